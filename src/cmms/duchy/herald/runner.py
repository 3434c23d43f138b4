"""Wiring of `cmms duchy herald`: settings in, a running Herald until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from cmms.common.errors import UserError
from cmms.common.kms import KmsError, default_kms_registry
from cmms.common.logging import get_logger
from cmms.crypto.hybrid import HybridPrivateKey
from cmms.duchy.herald.config import ProtocolsSetupConfig, load_protocols_setup_config
from cmms.duchy.herald.confirmation import Confirmer
from cmms.duchy.herald.creation import ComputationCreator
from cmms.duchy.herald.herald import Herald, Observer, StreamPolicy
from cmms.duchy.herald.kingdom import GrpcKingdomComputations, KingdomComputations
from cmms.duchy.herald.local import (
    ContinuationTokenStore,
    GrpcContinuationTokenStore,
    GrpcLocalComputations,
    LocalComputations,
)
from cmms.duchy.herald.processor import ComputationProcessor, Identity
from cmms.duchy.herald.retry import Backoff, Pacer
from cmms.duchy.herald.settings import HeraldSettings
from cmms.duchy.herald.start import ComputationStarter
from cmms.duchy.herald.starters.common import DuchyContext, Starter
from cmms.duchy.herald.starters.hmss import HmssStarter, StorePrivateKey
from cmms.duchy.herald.starters.liquid_legions import (
    LiquidLegionsV2Starter,
    ReachOnlyLiquidLegionsV2Starter,
)
from cmms.duchy.herald.starters.trustee import TrusTeeStarter
from cmms.duchy.private_keys import PrivateKeyStore
from cmms.protocols.stages import ProtocolType, RoleInComputation
from cmms.storage import open_blob_store

Closer = Callable[[], Awaitable[object]]
_log = get_logger(__name__)


@dataclass(frozen=True)
class HeraldOptions:
    """Everything about a Herald that is not a connection."""

    duchy: DuchyContext
    herald_id: str
    max_concurrency: int = 5
    backoff: Backoff = field(default_factory=Backoff)
    deletable_states: frozenset[int] = frozenset()
    # Stream failures in a row before the Herald gives up (None: `backoff.max_attempts`).
    stream_max_failures: int | None = None


def needs_private_key_store(setup: ProtocolsSetupConfig, duchy_id: str) -> bool:
    """Whether this duchy is an HMSS worker, which keeps per-computation private keys."""
    role = setup.hmss.role_of(duchy_id) if setup.hmss is not None else None
    return role in (RoleInComputation.FIRST_NON_AGGREGATOR, RoleInComputation.SECOND_NON_AGGREGATOR)


def assemble_herald(
    options: HeraldOptions,
    kingdom: KingdomComputations,
    local: LocalComputations,
    tokens: ContinuationTokenStore,
    store_private_key: StorePrivateKey | None,
    *,
    pacer: Pacer | None = None,
    observer: Observer | None = None,
    generate_key_pair: Callable[[], HybridPrivateKey] | None = None,
) -> Herald:
    """A Herald over the given clients (real gRPC ones, or fakes in tests)."""
    base = pacer or Pacer()
    pacer = Pacer(options.backoff, base.sleep, base.unit_random)
    hmss = (
        HmssStarter(options.duchy, store_private_key, generate_key_pair=generate_key_pair)
        if generate_key_pair is not None
        else HmssStarter(options.duchy, store_private_key)
    )
    starters: dict[int, Starter] = {
        ProtocolType.LIQUID_LEGIONS_V2: LiquidLegionsV2Starter(options.duchy),
        ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2: ReachOnlyLiquidLegionsV2Starter(options.duchy),
        ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE: hmss,
        ProtocolType.TRUS_TEE: TrusTeeStarter(options.duchy),
    }
    processor = ComputationProcessor(
        Identity(options.duchy.duchy_id, options.herald_id),
        kingdom,
        local,
        ComputationCreator(local, starters),
        Confirmer(local, options.duchy.setup),
        ComputationStarter(local),
        pacer=pacer,
        deletable_states=options.deletable_states,
    )
    policy = StreamPolicy(
        max_concurrency=options.max_concurrency,
        reconnect=Backoff(
            max_attempts=options.stream_max_failures or options.backoff.max_attempts,
            initial_seconds=options.backoff.initial_seconds,
            multiplier=options.backoff.multiplier,
            max_delay_seconds=options.backoff.max_delay_seconds,
        ),
    )
    return Herald(kingdom, tokens, processor, policy=policy, pacer=pacer, observer=observer)


@dataclass
class WiredHerald:
    herald: Herald
    closers: list[Closer] = field(default_factory=list)

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()


def wire_herald(settings: HeraldSettings, observer: Observer | None = None) -> WiredHerald:
    """The Herald over real channels, from settings; `close()` releases them."""
    setup = load_protocols_setup_config(settings.protocols_setup_config)
    closers: list[Closer] = []
    store_private_key: StorePrivateKey | None = None
    if needs_private_key_store(setup, settings.duchy_name):
        store_private_key = _private_key_store(settings, closers)
    kingdom_channel = settings.kingdom_channel()
    internal_channel = settings.internal_api_channel()
    closers += [kingdom_channel.close, internal_channel.close]
    options = HeraldOptions(
        duchy=DuchyContext(settings.duchy_name, setup, settings.blobs_storage_bucket),
        herald_id=settings.resolved_herald_id(),
        max_concurrency=settings.max_concurrency,
        backoff=Backoff(
            max_attempts=settings.max_attempts,
            initial_seconds=settings.initial_backoff_seconds,
            max_delay_seconds=settings.max_backoff_seconds,
        ),
        deletable_states=settings.deletable_states(),
        stream_max_failures=settings.stream_max_failures,
    )
    herald = assemble_herald(
        options,
        GrpcKingdomComputations(
            kingdom_channel,
            deadline_seconds=settings.kingdom_deadline_seconds,
            stream_deadline_seconds=settings.stream_deadline_seconds,
        ),
        GrpcLocalComputations(internal_channel, settings.internal_api_deadline_seconds),
        GrpcContinuationTokenStore(internal_channel, settings.internal_api_deadline_seconds),
        store_private_key,
        observer=observer,
    )
    return WiredHerald(herald, closers)


def _private_key_store(settings: HeraldSettings, closers: list[Closer]) -> StorePrivateKey:
    store_url = settings.resolved_private_key_store_url()
    if not settings.key_encryption_key_uri or not store_url:
        raise UserError(
            f"{settings.duchy_name} is an HMSS worker: it needs --key-encryption-key-uri and "
            "--private-key-store-url (or --blob-storage-url)"
        )
    try:
        kek = default_kms_registry().get_aead(settings.key_encryption_key_uri)
    except KmsError as error:
        raise UserError(f"cannot use the key-encryption key: {error}") from error
    blobs = open_blob_store(store_url)
    closers.append(blobs.close)
    return PrivateKeyStore(blobs, kek).store


async def run_herald(settings: HeraldSettings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set or the process gets SIGTERM/SIGINT; in-flight work finishes."""
    stop = stop or asyncio.Event()
    wired = wire_herald(settings)
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    try:
        _log.info("herald starting", duchy=settings.duchy_name)
        await wired.herald.run(stop)
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        await wired.close()
