"""Wiring of one EDP simulator process from its settings: channels, keys, audience, loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc

from cmms.api.public.v1 import certificates_pb2_grpc
from cmms.clients.certificates import KingdomCertificates
from cmms.clients.edp.payloads import KmsKey
from cmms.clients.edp.population import Audience, FrequencyDistribution, Population
from cmms.clients.edp.settings import EdpSettings
from cmms.clients.edp.simulator import (
    EdpSimulator,
    KingdomStubs,
    SimulatorOptions,
    capabilities,
    duchy_stubs,
    parse_duchy_targets,
)
from cmms.clients.identity import PartyKeys
from cmms.common.grpc import ChannelSettings, secure_channel
from cmms.common.kms import default_kms_registry
from cmms.crypto.randomness import SystemRandomSource


def population_of(settings: EdpSettings) -> tuple[Population, Audience]:
    population = Population(
        seed=settings.population_seed,
        size=settings.population_size,
        first_vid=settings.first_vid,
        overlap=settings.overlap,
    )
    audience = Audience(
        settings.edp_id,
        settings.reach_fraction,
        FrequencyDistribution(tuple(settings.frequency_weights)),
    )
    return population, audience


@contextlib.asynccontextmanager
async def simulator_from_settings(settings: EdpSettings) -> AsyncIterator[EdpSimulator]:
    """A started simulator whose channels close when the context exits."""
    files = settings.files()
    keys = PartyKeys.from_files(
        settings.principal,
        signing_key_file=files["signing_key_file"],
        encryption_private_keyset_file=files["encryption_private_keyset_file"],
        trusted_roots_file=files["trusted_roots_file"],
        trust_config_file=files["trust_config_file"],
    )
    tls = settings.client_tls()
    channel_settings = ChannelSettings(target_name_override=settings.tls_server_name)
    kingdom = secure_channel(settings.kingdom_target, tls, channel_settings)
    duchy_channels: dict[str, grpc.aio.Channel] = {
        duchy: secure_channel(target, tls, channel_settings)
        for duchy, target in parse_duchy_targets(settings.duchy_targets).items()
    }
    kms = KmsKey(default_kms_registry(), settings.kms_kek_uri) if settings.kms_kek_uri else None
    population, audience = population_of(settings)
    simulator = EdpSimulator(
        keys,
        KingdomStubs.over(kingdom),
        KingdomCertificates(certificates_pb2_grpc.CertificatesStub(kingdom)),
        duchy_stubs(duchy_channels),
        population,
        audience,
        SimulatorOptions(
            capabilities=capabilities(
                hmss=settings.hmss_supported, trustee=settings.trustee_supported
            ),
            measurement_consumers=settings.measurement_consumers,
            kms=kms,
        ),
        SystemRandomSource(),
    )
    try:
        await simulator.start()
        yield simulator
    finally:
        for channel in (kingdom, *duchy_channels.values()):
            await channel.close()


async def run(settings: EdpSettings, stop: asyncio.Event, *, once: bool = False) -> int:
    """Serve requisitions until `stop` (or one poll with `once`); returns the handled count."""
    async with simulator_from_settings(settings) as simulator:
        if once:
            return len(await simulator.poll_once())
        await simulator.run(stop, settings.poll_interval_seconds)
    return 0
