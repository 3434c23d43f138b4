"""The EDP simulator: a publisher that declares its capabilities and fulfils its requisitions.

At start it replaces its capabilities at the Kingdom and makes sure it has one event group per
configured measurement consumer. Then it polls `ListRequisitions(UNFULFILLED)` and handles each
requisition once: verify (§4.5), build the protocol's payload from its synthetic events, and
upload it to the right duchy, or fulfil directly at the Kingdom, or refuse with a justification.
Transient RPC failures leave the requisition to the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

import grpc
import numpy as np

from cmms.api.public.v1 import (
    data_providers_pb2,
    data_providers_pb2_grpc,
    event_groups_pb2,
    event_groups_pb2_grpc,
    requisition_fulfillment_pb2_grpc,
    requisitions_pb2,
    requisitions_pb2_grpc,
)
from cmms.clients.certificates import CertificateSource
from cmms.clients.edp.direct import (
    DEFAULT_NOISE_PREFERENCE,
    direct_fulfillment_request,
    direct_result,
)
from cmms.clients.edp.fulfillment import NoDuchyTargetError, fulfilling_duchy, request_stream
from cmms.clients.edp.payloads import (
    KmsKey,
    Upload,
    base_header,
    frequency_vector,
    hmss_upload,
    liquid_legions_body,
    trustee_upload,
)
from cmms.clients.edp.population import Audience, Population, impression_vids
from cmms.clients.edp.verification import (
    SPEC_INVALID,
    UNFULFILLABLE,
    Protocol,
    RequisitionRefused,
    VerifiedRequisition,
    verify_requisition,
)
from cmms.clients.identity import PartyKeys
from cmms.common.logging import get_logger
from cmms.crypto.prng import SEED_LENGTH
from cmms.crypto.randomness import RandomSource
from cmms.sketch import VidIndexMap

Requisition = requisitions_pb2.Requisition
EVENT_GROUP_REFERENCE_PREFIX = "sim-"
RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
LIST_PAGE_SIZE = 100


class OutcomeKind(enum.Enum):
    FULFILLED = "fulfilled"
    REFUSED = "refused"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    """What happened to one requisition."""

    requisition: str
    kind: OutcomeKind
    detail: str = ""


@dataclass(frozen=True)
class KingdomStubs:
    """The Kingdom public API services an EDP calls."""

    requisitions: requisitions_pb2_grpc.RequisitionsStub
    data_providers: data_providers_pb2_grpc.DataProvidersStub
    event_groups: event_groups_pb2_grpc.EventGroupsStub

    @classmethod
    def over(cls, channel: grpc.aio.Channel) -> KingdomStubs:
        return cls(
            requisitions=requisitions_pb2_grpc.RequisitionsStub(channel),
            data_providers=data_providers_pb2_grpc.DataProvidersStub(channel),
            event_groups=event_groups_pb2_grpc.EventGroupsStub(channel),
        )


@dataclass(frozen=True)
class SimulatorOptions:
    capabilities: data_providers_pb2.DataProvider.Capabilities
    measurement_consumers: tuple[str, ...] = ()
    kms: KmsKey | None = None
    noise_preference: tuple[int, ...] = DEFAULT_NOISE_PREFERENCE


class EdpSimulator:
    """One simulated EDP; `start` once, then `poll_once` (or `run` until stopped)."""

    def __init__(
        self,
        keys: PartyKeys,
        kingdom: KingdomStubs,
        certificates: CertificateSource,
        duchies: Mapping[str, requisition_fulfillment_pb2_grpc.RequisitionFulfillmentStub],
        population: Population,
        audience: Audience,
        options: SimulatorOptions,
        random: RandomSource,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._keys = keys
        self._kingdom = kingdom
        self._certificates = certificates
        self._duchies = dict(duchies)
        self._population = population
        self._audience = audience
        self._options = options
        self._random = random
        self._clock = clock
        self._done: set[str] = set()
        self._event_groups: set[str] = set()
        self._log = get_logger(__name__, data_provider=keys.name)

    @cached_property
    def events(self) -> np.ndarray:
        """This EDP's impressions as a VID multiset."""
        return impression_vids(self._population, self._audience)

    @cached_property
    def index_map(self) -> VidIndexMap:
        return VidIndexMap(self._population.vids)

    @property
    def event_groups(self) -> frozenset[str]:
        return frozenset(self._event_groups)

    async def start(self) -> None:
        """Declare capabilities and make sure each configured consumer has an event group."""
        await self._kingdom.data_providers.ReplaceDataProviderCapabilities(
            data_providers_pb2.ReplaceDataProviderCapabilitiesRequest(
                name=self._keys.name, capabilities=self._options.capabilities
            )
        )
        existing = await self._kingdom.event_groups.ListEventGroups(
            event_groups_pb2.ListEventGroupsRequest(parent=self._keys.name, page_size=500)
        )
        self._event_groups.update(
            g.name
            for g in existing.event_groups
            if g.event_group_reference_id.startswith(EVENT_GROUP_REFERENCE_PREFIX)
        )
        for consumer in self._options.measurement_consumers:
            reference = f"{EVENT_GROUP_REFERENCE_PREFIX}{consumer.replace('/', '-')}"
            group = await self._kingdom.event_groups.CreateEventGroup(
                event_groups_pb2.CreateEventGroupRequest(
                    parent=self._keys.name,
                    event_group=event_groups_pb2.EventGroup(
                        measurement_consumer=consumer,
                        event_group_reference_id=reference,
                        display_name=f"simulated events of {self._keys.principal.id}",
                    ),
                    request_id=reference,
                )
            )
            self._event_groups.add(group.name)
        self._log.info("edp started", event_groups=sorted(self._event_groups))

    async def poll_once(self) -> list[Outcome]:
        """Handle every UNFULFILLED requisition not handled before."""
        outcomes: list[Outcome] = []
        page_token = ""
        while True:
            response = await self._kingdom.requisitions.ListRequisitions(
                requisitions_pb2.ListRequisitionsRequest(
                    parent=self._keys.name,
                    page_size=LIST_PAGE_SIZE,
                    page_token=page_token,
                    filter=requisitions_pb2.ListRequisitionsRequest.Filter(
                        states=[Requisition.UNFULFILLED]
                    ),
                )
            )
            for requisition in response.requisitions:
                if requisition.name in self._done:
                    continue
                outcome = await self.process(requisition)
                if outcome.kind is not OutcomeKind.RETRY:
                    self._done.add(requisition.name)
                outcomes.append(outcome)
            page_token = response.next_page_token
            if not page_token:
                return outcomes

    async def run(self, stop: asyncio.Event, interval_seconds: float) -> None:
        """Poll every `interval_seconds` until `stop` is set."""
        while not stop.is_set():
            try:
                await self.poll_once()
            except grpc.aio.AioRpcError as exc:
                self._log.warning("poll failed", code=exc.code().name, details=exc.details())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_seconds)

    async def process(self, requisition: Requisition) -> Outcome:
        """Verify, build and upload one requisition, or refuse it."""
        log = self._log.bind(requisition=requisition.name)
        try:
            verified = await verify_requisition(
                requisition, self._keys, self._certificates, now=self._clock()
            )
            self._check_event_groups(verified)
            await self._fulfil(verified)
        except RequisitionRefused as refusal:
            log.info("refusing", justification=refusal.justification, reason=refusal.message)
            return await self._refuse(requisition, refusal)
        except NoDuchyTargetError as exc:
            log.error("cannot fulfil", reason=str(exc))
            return Outcome(requisition.name, OutcomeKind.FAILED, str(exc))
        except grpc.aio.AioRpcError as exc:
            kind = OutcomeKind.RETRY if exc.code() in RETRYABLE_CODES else OutcomeKind.FAILED
            log.warning("fulfilment failed", code=exc.code().name, details=exc.details())
            return Outcome(requisition.name, kind, f"{exc.code().name}: {exc.details()}")
        log.info("fulfilled", protocol=verified.protocol.value)
        return Outcome(requisition.name, OutcomeKind.FULFILLED, verified.protocol.value)

    def _check_event_groups(self, verified: VerifiedRequisition) -> None:
        for entry in verified.requisition_spec.event_groups:
            if entry.key not in self._event_groups:
                raise RequisitionRefused(SPEC_INVALID, f"{entry.key} is not an event group of ours")
            if entry.filter:
                raise RequisitionRefused(
                    UNFULFILLABLE, "the simulator's events have no fields to filter on"
                )

    async def _refuse(self, requisition: Requisition, refusal: RequisitionRefused) -> Outcome:
        try:
            await self._kingdom.requisitions.RefuseRequisition(
                requisitions_pb2.RefuseRequisitionRequest(
                    name=requisition.name, refusal=refusal.refusal(), etag=requisition.etag
                )
            )
        except grpc.aio.AioRpcError as exc:
            kind = OutcomeKind.RETRY if exc.code() in RETRYABLE_CODES else OutcomeKind.FAILED
            return Outcome(requisition.name, kind, f"refusal failed: {exc.details()}")
        return Outcome(requisition.name, OutcomeKind.REFUSED, refusal.message)

    async def _fulfil(self, verified: VerifiedRequisition) -> None:
        if verified.protocol is Protocol.DIRECT:
            result = await asyncio.to_thread(
                direct_result,
                verified,
                self.events,
                self._random.derive(f"direct/{verified.requisition.name}"),
                self._options.noise_preference,
            )
            await self._kingdom.requisitions.FulfillDirectRequisition(
                direct_fulfillment_request(verified, result, self._keys)
            )
            return
        duchy = fulfilling_duchy(verified, self._duchies.keys())
        upload = await asyncio.to_thread(self._build_upload, verified)
        await self._duchies[duchy].FulfillRequisition(request_stream(upload.header, upload.body))

    def _build_upload(self, verified: VerifiedRequisition) -> Upload:
        """CPU-bound, so it runs off the event loop."""
        if verified.protocol.is_liquid_legions:
            body = liquid_legions_body(
                verified, self.events, self._random.derive(f"sketch/{verified.requisition.name}")
            )
            return Upload(header=base_header(verified), body=[body])
        vector = frequency_vector(verified, self.index_map, self.events)
        if verified.protocol is Protocol.HONEST_MAJORITY_SHARE_SHUFFLE:
            seed = self._random.randbytes(SEED_LENGTH)
            return hmss_upload(verified, vector, seed, self._keys.signing_key)
        return trustee_upload(verified, vector, self._options.kms)


def capabilities(
    *, hmss: bool = True, trustee: bool = False, noise_none: bool = True
) -> data_providers_pb2.DataProvider.Capabilities:
    """The capabilities a simulator advertises."""
    return data_providers_pb2.DataProvider.Capabilities(
        honest_majority_share_shuffle_supported=hmss,
        trus_tee_supported=trustee,
        noise_mechanism_none_supported=noise_none,
    )


def duchy_stubs(
    channels: Mapping[str, grpc.aio.Channel],
) -> dict[str, requisition_fulfillment_pb2_grpc.RequisitionFulfillmentStub]:
    return {
        duchy: requisition_fulfillment_pb2_grpc.RequisitionFulfillmentStub(channel)
        for duchy, channel in channels.items()
    }


def parse_duchy_targets(values: Sequence[str]) -> dict[str, str]:
    """`["worker1=host:port", ...]` -> `{"worker1": "host:port"}`."""
    targets: dict[str, str] = {}
    for value in values:
        duchy, separator, target = value.partition("=")
        if not separator or not duchy.strip() or not target.strip():
            raise ValueError(f"expected DUCHY=HOST:PORT, got {value!r}")
        targets[duchy.strip()] = target.strip()
    return targets
