"""`cmms duchy mill`: the composition root and the job's loop (duchy_internals §8.1).

A job first works on the computation the scheduler claimed for it (if any), then keeps claiming
work of the same type until none is left; with `--poll` it waits and claims again until stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc

from cmms.common import consent
from cmms.common.grpc import StatusError
from cmms.common.identity import TrustConfig
from cmms.common.kms import default_kms_registry
from cmms.common.logging import get_logger
from cmms.crypto import signing
from cmms.crypto.randomness import SystemRandomSource
from cmms.duchy.mill.blobs import StageBlobs
from cmms.duchy.mill.certificates import (
    CertificateSource,
    KingdomCertificates,
    NoCertificates,
    SignatureChecker,
)
from cmms.duchy.mill.computations import GrpcComputationsClient
from cmms.duchy.mill.context import MillOptions, MillServices
from cmms.duchy.mill.handlers import HandlerTable
from cmms.duchy.mill.hmss import HmssHandlers
from cmms.duchy.mill.kingdom import GrpcKingdomSystemApi, KingdomReporter
from cmms.duchy.mill.liquid_legions import LiquidLegionsCommon, SecretKeySealer
from cmms.duchy.mill.llv2 import Llv2Handlers
from cmms.duchy.mill.peers import GrpcPeerControl, PeerSender
from cmms.duchy.mill.reach_only_llv2 import ReachOnlyLlv2Handlers
from cmms.duchy.mill.results import ConsentSigner
from cmms.duchy.mill.runner import StageRunner
from cmms.duchy.mill.settings import MillSettings
from cmms.duchy.mill.stats import GrpcStatsSink, StatsRecorder
from cmms.duchy.mill.trustee import TrusTeeHandlers
from cmms.duchy.private_keys import PrivateKeyStore
from cmms.protocols.stages import ProtocolType
from cmms.storage import open_blob_store

Closer = Callable[[], Awaitable[object]]
_log = get_logger(__name__)


@dataclass
class Mill:
    """A runner wired to its servers, and what to close when done."""

    runner: StageRunner
    settings: MillSettings
    closers: list[Closer] = field(default_factory=list)

    async def close(self) -> None:
        closers, self.closers = self.closers, []
        for close in reversed(closers):
            await close()


def clock() -> datetime:
    return datetime.now(UTC)


def build_mill(settings: MillSettings) -> Mill:
    closers: list[Closer] = []
    internal = settings.internal_api_channel()
    system = settings.kingdom_system_channel()
    closers += [internal.close, system.close]
    public = settings.kingdom_public_channel()
    certificates: CertificateSource = NoCertificates()
    if public is not None:
        closers.append(public.close)
        certificates = KingdomCertificates(public, settings.kingdom_deadline_seconds)
    peers = settings.peer_channels()
    closers += [channel.close for channel in peers.values()]
    store = open_blob_store(settings.blob_storage_url)
    closers.append(store.close)

    from datetime import UTC, datetime

    from cmms.common.durations import parse_duration  # noqa: F401  (settings already parsed)

    def clock() -> datetime:
        return datetime.now(UTC)

    signer = ConsentSigner(
        settings.consent_signaling_certificate_resource_name,
        signing.load_private_key(settings.consent_signaling_private_key_der_file.read_bytes()),
    )
    services = MillServices(
        computations=GrpcComputationsClient(internal, settings.internal_api_deadline_seconds),
        blobs=StageBlobs(store),
        peers=PeerSender(
            GrpcPeerControl(peers, settings.peer_deadline_seconds), settings.bytes_per_chunk
        ),
        kingdom=KingdomReporter(
            GrpcKingdomSystemApi(system, settings.kingdom_deadline_seconds),
            settings.duchy_name,
            asyncio.sleep,
        ),
        stats=StatsRecorder(GrpcStatsSink(internal, settings.internal_api_deadline_seconds)),
        signer=signer,
        clock=clock,
        randomness=SystemRandomSource(),
    )
    kms = default_kms_registry()
    private_keys = None
    if settings.key_encryption_key_uri:
        key_store = open_blob_store(settings.private_key_store_url or settings.blob_storage_url)
        closers.append(key_store.close)
        private_keys = PrivateKeyStore(key_store, kms.get_aead(settings.key_encryption_key_uri))
    signatures = SignatureChecker(_trust_store(settings), clock)
    kek = kms.get_aead(settings.key_encryption_key_uri) if settings.key_encryption_key_uri else None
    liquid_legions = LiquidLegionsCommon(SecretKeySealer(kek), signatures)
    tables: dict[ProtocolType, HandlerTable] = {
        ProtocolType.LIQUID_LEGIONS_V2: Llv2Handlers(liquid_legions).table(),
        ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2: ReachOnlyLlv2Handlers(liquid_legions).table(),
        ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE: HmssHandlers(
            private_keys, certificates, signatures
        ).table(),
        ProtocolType.TRUS_TEE: TrusTeeHandlers(kms).table(),
    }
    options = MillOptions(
        mill_id=settings.resolved_mill_id(),
        duchy_id=settings.duchy_name,
        lock_duration=settings.work_lock_duration,
        maximum_attempts=settings.maximum_attempts,
        parallelism=settings.parallelism,
    )
    return Mill(StageRunner(services, options, tables), settings, closers)


def _trust_store(settings: MillSettings) -> signing.TrustStore | None:
    if settings.trust_config_file is None:
        return None
    return consent.trust_store_with_owners(
        settings.cert_collection_file.read_bytes(), TrustConfig.load(settings.trust_config_file)
    )


async def run_mill(mill: Mill, stop: asyncio.Event | None = None) -> int:
    """Process the claimed computation, then claim more; returns how many were processed."""
    settings = mill.settings
    runner = mill.runner
    processed = 0
    claimed_type = settings.claimed_type()
    if claimed_type is not None:
        assert settings.claimed_computation_id is not None
        assert settings.claimed_computation_version is not None
        if await runner.process_claimed(
            settings.claimed_computation_id, settings.claimed_computation_version
        ):
            processed += 1
    work_type = settings.work_type()
    assert work_type is not None  # checked by the settings
    while stop is None or not stop.is_set():
        if await _claim_and_process(runner, work_type):
            processed += 1
            continue
        if not settings.poll:
            break
        await _pause(stop, settings.polling_interval.total_seconds())
    return processed


async def _claim_and_process(runner: StageRunner, protocol: ProtocolType) -> bool:
    try:
        return await runner.claim_and_process(protocol)
    except StatusError as error:
        # The internal API not being up yet is no reason to crash; there is simply no work now.
        if error.code == grpc.StatusCode.UNAVAILABLE:
            _log.warning("internal API unavailable; no work claimed", error=str(error))
            return False
        raise


async def _pause(stop: asyncio.Event | None, seconds: float) -> None:
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
