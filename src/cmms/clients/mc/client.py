"""The measurement consumer: find EDPs and their groups, create a measurement, wait, read it."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc

from cmms.api.public.v1 import (
    crypto_pb2,
    data_providers_pb2,
    data_providers_pb2_grpc,
    event_groups_pb2,
    event_groups_pb2_grpc,
    measurement_consumers_pb2,
    measurement_consumers_pb2_grpc,
    measurements_pb2,
    measurements_pb2_grpc,
)
from cmms.clients.certificates import CertificateSource
from cmms.clients.identity import PartyKeys
from cmms.clients.mc.measurement import (
    DataProviderTarget,
    MeasurementParams,
    PreparedMeasurement,
    build_create_measurement_request,
)
from cmms.clients.mc.results import VerifiedResult, verify_results
from cmms.common import consent
from cmms.crypto.randomness import RandomSource

Measurement = measurements_pb2.Measurement
TERMINAL_STATES = frozenset({Measurement.SUCCEEDED, Measurement.FAILED, Measurement.CANCELLED})
# Reads of a measurement the Kingdom may answer on a later try.
UNANSWERED_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
DEFAULT_MAX_UNANSWERED = 30


class MeasurementConsumerError(Exception):
    """The consumer cannot go on (no EDPs, a bad EDP key, a timeout, ...)."""


@dataclass(frozen=True)
class Backoff:
    """Poll delays: `initial`, then times `multiplier`, never above `maximum` (no jitter)."""

    initial_seconds: float = 1.0
    multiplier: float = 1.5
    maximum_seconds: float = 60.0

    def delays(self) -> Callable[[], float]:
        delay = self.initial_seconds

        def next_delay() -> float:
            nonlocal delay
            current = delay
            delay = min(self.maximum_seconds, delay * self.multiplier)
            return current

        return next_delay


@dataclass(frozen=True)
class ConsumerStubs:
    measurements: measurements_pb2_grpc.MeasurementsStub
    measurement_consumers: measurement_consumers_pb2_grpc.MeasurementConsumersStub
    data_providers: data_providers_pb2_grpc.DataProvidersStub
    event_groups: event_groups_pb2_grpc.EventGroupsStub

    @classmethod
    def over(cls, channel: grpc.aio.Channel) -> ConsumerStubs:
        return cls(
            measurements=measurements_pb2_grpc.MeasurementsStub(channel),
            measurement_consumers=measurement_consumers_pb2_grpc.MeasurementConsumersStub(channel),
            data_providers=data_providers_pb2_grpc.DataProvidersStub(channel),
            event_groups=event_groups_pb2_grpc.EventGroupsStub(channel),
        )


class MeasurementConsumerClient:
    def __init__(
        self,
        keys: PartyKeys,
        stubs: ConsumerStubs,
        certificates: CertificateSource,
        random: RandomSource,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._keys = keys
        self._stubs = stubs
        self._certificates = certificates
        self._random = random
        self._clock = clock

    async def certificate_name(self) -> str:
        """The consumer's current consent-signaling certificate at the Kingdom."""
        consumer: measurement_consumers_pb2.MeasurementConsumer = (
            await self._stubs.measurement_consumers.GetMeasurementConsumer(
                measurement_consumers_pb2.GetMeasurementConsumerRequest(name=self._keys.name)
            )
        )
        return consumer.certificate

    async def data_provider_targets(
        self, data_providers: Sequence[str] | None = None
    ) -> list[DataProviderTarget]:
        """EDPs with event groups for this consumer (optionally only `data_providers`), sorted."""
        groups = await self._stubs.event_groups.ListEventGroups(
            event_groups_pb2.ListEventGroupsRequest(parent=self._keys.name, page_size=500)
        )
        by_provider: dict[str, list[str]] = defaultdict(list)
        for group in groups.event_groups:
            by_provider["/".join(group.name.split("/")[:2])].append(group.name)
        wanted = sorted(by_provider) if data_providers is None else list(data_providers)
        missing = [name for name in wanted if name not in by_provider]
        if missing:
            raise MeasurementConsumerError(f"no event groups for us at {', '.join(missing)}")
        if not wanted:
            raise MeasurementConsumerError("no data provider has an event group for us")
        return [await self._target(name, tuple(sorted(by_provider[name]))) for name in wanted]

    async def _target(self, name: str, event_groups: tuple[str, ...]) -> DataProviderTarget:
        provider = await self._stubs.data_providers.GetDataProvider(
            data_providers_pb2.GetDataProviderRequest(name=name)
        )
        # The EDP signed its own key: check it before encrypting consent to it.
        try:
            certificate = await self._certificates.get(provider.certificate)
            if consent.certificate_owner(provider.certificate) != name:
                raise consent.ConsentSignalError(f"{provider.certificate} is not {name}'s")
            consent.verify_signed(
                provider.public_key,
                certificate,
                trust_store=self._keys.trust_store,
                now=self._clock(),
                expected_owner=name,
            )
            public_key = consent.unpack(provider.public_key, crypto_pb2.EncryptionPublicKey)
        except consent.ConsentSignalError as exc:
            raise MeasurementConsumerError(f"{name}'s public key: {exc}") from exc
        return DataProviderTarget(
            name=name,
            certificate=provider.certificate,
            public_key=public_key,
            event_groups=event_groups,
        )

    async def create(
        self,
        params: MeasurementParams,
        data_providers: Sequence[str] | None = None,
        *,
        request_id: str = "",
    ) -> tuple[Measurement, PreparedMeasurement]:
        """Create (idempotently, per `request_id`) a measurement over the chosen EDPs."""
        targets = await self.data_provider_targets(data_providers)
        prepared = build_create_measurement_request(
            self._keys,
            await self.certificate_name(),
            params,
            targets,
            self._random,
            request_id=request_id,
        )
        measurement = await self._stubs.measurements.CreateMeasurement(prepared.request)
        return measurement, prepared

    async def wait(
        self,
        name: str,
        *,
        backoff: Backoff = Backoff(),
        on_update: Callable[[Measurement], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_wait_seconds: float | None = None,
        max_unanswered: int = DEFAULT_MAX_UNANSWERED,
    ) -> Measurement:
        """Poll `GetMeasurement` until a terminal state; `on_update` sees every read.

        A read the Kingdom cannot answer for now (UNAVAILABLE, DEADLINE_EXCEEDED: a restart, a
        slow moment) is polled again on the same schedule, up to `max_unanswered` reads in a row;
        the measurement goes on at the Kingdom meanwhile.
        """
        next_delay = backoff.delays()
        waited = 0.0
        unanswered = 0
        state = "unread"
        while True:
            try:
                measurement: Measurement = await self._stubs.measurements.GetMeasurement(
                    measurements_pb2.GetMeasurementRequest(name=name)
                )
            except grpc.aio.AioRpcError as error:
                if error.code() not in UNANSWERED_CODES or unanswered >= max_unanswered:
                    raise
                unanswered += 1
            else:
                unanswered = 0
                state = Measurement.State.Name(measurement.state)
                if on_update is not None:
                    on_update(measurement)
                if measurement.state in TERMINAL_STATES:
                    return measurement
            delay = next_delay()
            if max_wait_seconds is not None and waited + delay > max_wait_seconds:
                raise MeasurementConsumerError(f"{name} still {state} after {waited:.0f} s")
            await sleep(delay)
            waited += delay

    async def cancel(self, name: str) -> Measurement:
        cancelled: Measurement = await self._stubs.measurements.CancelMeasurement(
            measurements_pb2.CancelMeasurementRequest(name=name)
        )
        return cancelled

    async def results(self, measurement: Measurement) -> list[VerifiedResult]:
        """The measurement's verified results."""
        return await verify_results(measurement, self._keys, self._certificates, now=self._clock())
