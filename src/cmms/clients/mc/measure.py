"""One measurement from start to verified result: what `cmms mc measure` runs."""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from cmms.api.public.v1 import certificates_pb2_grpc, measurements_pb2
from cmms.clients.certificates import KingdomCertificates
from cmms.clients.endpoints import Endpoints
from cmms.clients.identity import PartyKeys
from cmms.clients.mc.client import (
    Backoff,
    ConsumerStubs,
    MeasurementConsumerClient,
    MeasurementConsumerError,
)
from cmms.clients.mc.measurement import MeasurementParams
from cmms.clients.mc.results import VerifiedResult
from cmms.common.grpc import ChannelSettings, ClientTls, secure_channel
from cmms.common.identity import Principal
from cmms.crypto.randomness import SystemRandomSource

Measurement = measurements_pb2.Measurement


class ExpectedProtocol(enum.Enum):
    """The protocol the consumer expects the Kingdom to pick (the Kingdom decides)."""

    ANY = "any"
    LLV2 = "llv2"
    RO_LLV2 = "ro-llv2"
    HMSS = "hmss"
    TRUSTEE = "trustee"
    DIRECT = "direct"

    @property
    def oneof_name(self) -> str | None:
        return {
            ExpectedProtocol.LLV2: "liquid_legions_v2",
            ExpectedProtocol.RO_LLV2: "reach_only_liquid_legions_v2",
            ExpectedProtocol.HMSS: "honest_majority_share_shuffle",
            ExpectedProtocol.TRUSTEE: "trus_tee",
            ExpectedProtocol.DIRECT: "direct",
        }.get(self)


@dataclass(frozen=True)
class MeasureOutcome:
    measurement: Measurement
    results: list[VerifiedResult]


async def measure(
    endpoints: Endpoints,
    params: MeasurementParams,
    *,
    protocol: ExpectedProtocol = ExpectedProtocol.ANY,
    measurement_consumer: str | None = None,
    data_providers: list[str] | None = None,
    request_id: str | None = None,
    backoff: Backoff = Backoff(),
    max_wait_seconds: float | None = None,
    on_update: Callable[[Measurement], None] | None = None,
) -> MeasureOutcome:
    """Create, wait for and verify one measurement; `MeasurementConsumerError` if it fails."""
    consumer_id = measurement_consumer or next(iter(endpoints.measurement_consumers), None)
    if consumer_id is None:
        raise MeasurementConsumerError("the endpoints file names no measurement consumer")
    principal = Principal.measurement_consumer(consumer_id)
    keys = PartyKeys.from_pki(endpoints.pki, principal)
    channel = secure_channel(
        endpoints.kingdom.public_api,
        ClientTls.from_pki(endpoints.pki, principal),
        ChannelSettings(target_name_override=endpoints.tls_server_name),
    )
    try:
        client = MeasurementConsumerClient(
            keys,
            ConsumerStubs.over(channel),
            KingdomCertificates(certificates_pb2_grpc.CertificatesStub(channel)),
            SystemRandomSource(),
        )
        chosen = data_providers
        if protocol is ExpectedProtocol.DIRECT and not chosen:
            # Direct means a single EDP: the first one that offers us an event group.
            chosen = [(await client.data_provider_targets())[0].name]
        measurement, _ = await client.create(
            params, chosen, request_id=request_id or secrets.token_hex(8)
        )
        picked = measurement.protocol_config.WhichOneof("protocol")
        if protocol.oneof_name is not None and picked != protocol.oneof_name:
            await client.cancel(measurement.name)
            raise MeasurementConsumerError(
                f"the Kingdom chose {picked} for {measurement.name}, not {protocol.value}; "
                "cancelled it"
            )
        if on_update is not None:
            on_update(measurement)
        done = await client.wait(
            measurement.name,
            backoff=backoff,
            on_update=on_update,
            max_wait_seconds=max_wait_seconds,
        )
        if done.state != Measurement.SUCCEEDED:
            reason = Measurement.Failure.Reason.Name(done.failure.reason)
            raise MeasurementConsumerError(
                f"{done.name} ended {Measurement.State.Name(done.state)}"
                + (f" ({reason}: {done.failure.message})" if done.HasField("failure") else "")
            )
        return MeasureOutcome(done, await client.results(done))
    finally:
        await channel.close()
