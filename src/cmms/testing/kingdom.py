"""Test kit for the Kingdom: a seeded in-process Kingdom and builders for consumer requests.

`KingdomWorld.open(url, pki)` migrates a fresh database, seeds every party of a development PKI
and exposes the repositories, the servicers (identity comes from `acting_as`), a manual clock
and helpers that play the MC, the EDPs and the duchies. The signatures are real (the MC's
consent-signaling key), although the Kingdom verifies none of them.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from google.protobuf import any_pb2

from cmms.api.public.v1 import (
    crypto_pb2,
    measurement_spec_pb2,
    measurements_pb2,
    requisitions_pb2,
)
from cmms.api.system.v1 import computation_participants_pb2 as participants_pb2
from cmms.api.system.v1 import computation_pb2, computations_pb2
from cmms.api.system.v1 import requisitions_pb2 as system_requisitions_pb2
from cmms.common.identity import Principal, PrincipalKind, acting_as
from cmms.common.pki import PkiLayout
from cmms.crypto import signing
from cmms.kingdom import names
from cmms.kingdom.api.certificates import CertificatesServicer
from cmms.kingdom.api.event_groups import EventGroupsServicer
from cmms.kingdom.api.measurements import MeasurementsServicer
from cmms.kingdom.api.parties import DataProvidersServicer, MeasurementConsumersServicer
from cmms.kingdom.api.requisitions import RequisitionsServicer
from cmms.kingdom.api.views import MEASUREMENT_SPEC_TYPE_URL, SIGNED_MESSAGE_TYPE_URL
from cmms.kingdom.config import KingdomConfig, example_config
from cmms.kingdom.db.records import Capabilities, LogEntryRecord
from cmms.kingdom.db.repository import KingdomRepositories, open_repositories
from cmms.kingdom.names import Owner, OwnerKind, certificate_name
from cmms.kingdom.seeding import seed_from_pki
from cmms.kingdom.system.computations import ComputationsServicer, StreamSettings
from cmms.kingdom.system.log_entries import ComputationLogEntriesServicer
from cmms.kingdom.system.participants import ComputationParticipantsServicer
from cmms.kingdom.system.requisitions import SystemRequisitionsServicer
from cmms.kingdom.system.views import computation_message as computation_view
from cmms.testing.manual_clock import ManualClock

KINGDOM_DUCHIES = ("aggregator", "worker1", "worker2")
_OWNER_KINDS = {
    PrincipalKind.MEASUREMENT_CONSUMER: OwnerKind.MEASUREMENT_CONSUMER,
    PrincipalKind.DATA_PROVIDER: OwnerKind.DATA_PROVIDER,
    PrincipalKind.DUCHY: OwnerKind.DUCHY,
}
MC = Principal.measurement_consumer("mc1")


def nonce_hash(nonce: int) -> bytes:
    return hashlib.sha256((nonce % 2**64).to_bytes(8, "big")).digest()


@dataclass(frozen=True)
class RequestedEdp:
    """One EDP of a measurement the test creates: its nonce is what it later reveals."""

    data_provider_id: str
    nonce: int
    encrypted_requisition_spec: bytes


@dataclass(frozen=True)
class MeasurementRequest:
    request: measurements_pb2.CreateMeasurementRequest
    edps: tuple[RequestedEdp, ...]

    def nonce_of(self, data_provider_id: str) -> int:
        return next(e.nonce for e in self.edps if e.data_provider_id == data_provider_id)


@dataclass
class Servicers:
    certificates: CertificatesServicer
    measurement_consumers: MeasurementConsumersServicer
    data_providers: DataProvidersServicer
    event_groups: EventGroupsServicer
    measurements: MeasurementsServicer
    requisitions: RequisitionsServicer
    computations: ComputationsServicer
    participants: ComputationParticipantsServicer
    log_entries: ComputationLogEntriesServicer
    system_requisitions: SystemRequisitionsServicer

    @classmethod
    def over(cls, repositories: KingdomRepositories, stream: StreamSettings) -> Servicers:
        return cls(
            certificates=CertificatesServicer(repositories),
            measurement_consumers=MeasurementConsumersServicer(repositories),
            data_providers=DataProvidersServicer(repositories),
            event_groups=EventGroupsServicer(repositories),
            measurements=MeasurementsServicer(repositories),
            requisitions=RequisitionsServicer(repositories),
            computations=ComputationsServicer(repositories, stream=stream),
            participants=ComputationParticipantsServicer(repositories),
            log_entries=ComputationLogEntriesServicer(repositories),
            system_requisitions=SystemRequisitionsServicer(repositories),
        )


def kingdom_test_config(**changes: object) -> KingdomConfig:
    """The reference test deployment config (aggregator, worker1, worker2), with overrides."""
    base = example_config(KINGDOM_DUCHIES).model_dump(mode="json")
    for dotted, value in changes.items():
        target = base
        *path, leaf = dotted.split("__")
        for part in path:
            target = target[part]
        target[leaf] = value
    return KingdomConfig.model_validate(base)


@dataclass
class KingdomWorld:
    repositories: KingdomRepositories
    pki: PkiLayout
    clock: ManualClock
    stream: StreamSettings = field(default_factory=StreamSettings)
    certificate_names: dict[str, str] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    async def open(
        cls,
        database_url: str,
        pki: PkiLayout,
        *,
        config: KingdomConfig | None = None,
        clock: ManualClock | None = None,
        stream: StreamSettings | None = None,
        seed: bool = True,
        edp_required_duchies: tuple[str, ...] = ("worker1", "worker2"),
    ) -> KingdomWorld:
        """As the reference's tests: every EDP requires worker1 and worker2 (for LLv2)."""
        clock = clock or ManualClock(datetime.now(UTC).replace(microsecond=0))
        repositories = await open_repositories(
            database_url, config or kingdom_test_config(), clock=clock
        )
        world = cls(repositories, pki, clock, stream or StreamSettings(max_lifetime=0))
        if seed:
            report = await seed_from_pki(repositories, pki)
            for name in report.parties:
                if name.startswith("dataProviders/"):
                    await repositories.parties.upsert_data_provider(
                        name.split("/")[1], required_duchies=edp_required_duchies
                    )
        await world.refresh_certificate_names()
        return world

    async def refresh_certificate_names(self) -> None:
        """Current certificate name of every party, by id."""
        for principal in self.pki.load_trust_config().principals:
            kind = _OWNER_KINDS.get(principal.kind)
            if kind is None:
                continue
            owned = await self.repositories.certificates.list_owned(Owner(kind, principal.id))
            if owned:
                self.certificate_names[principal.id] = certificate_name(
                    kind, principal.id, owned[0].certificate_id
                )

    @property
    def servicers(self) -> Servicers:
        return Servicers.over(self.repositories, self.stream)

    async def close(self) -> None:
        await self.repositories.close()

    async def log_entries_of(self, computation_name: str) -> list[LogEntryRecord]:
        """Every stored log entry of a computation's measurement, oldest first."""
        computation_id = names.parse_computation(computation_name)
        assert computation_id is not None, computation_name
        snapshot = await self.repositories.computations.get(computation_id)
        return await self.repositories.log_entries.list_for_measurement(
            snapshot.measurement.measurement_id
        )

    async def set_capabilities(self, dp_ids: Sequence[str], capabilities: Capabilities) -> None:
        for dp_id in dp_ids:
            await self.repositories.parties.replace_capabilities(dp_id, capabilities)

    def measurement_request(
        self,
        dp_ids: Sequence[str],
        *,
        reach_only: bool = False,
        request_id: str = "",
        sampling: tuple[float, float] = (0.0, 1.0),
        delta: float = 1e-15,
    ) -> MeasurementRequest:
        """A signed R&F (or reach) CreateMeasurement request from `mc1` over `dp_ids`."""
        edps = tuple(
            RequestedEdp(dp_id, secrets.randbits(64) or 1, secrets.token_bytes(64))
            for dp_id in dp_ids
        )
        spec = measurement_spec_pb2.MeasurementSpec(
            measurement_public_key=crypto_pb2.EncryptionPublicKey(
                format=crypto_pb2.EncryptionPublicKey.TINK_KEYSET, data=b"mc public keyset"
            ),
            nonce_hashes=[nonce_hash(e.nonce) for e in edps],
        )
        spec.vid_sampling_interval.start, spec.vid_sampling_interval.width = sampling
        if reach_only:
            spec.reach.privacy_params.epsilon = 1.0
            spec.reach.privacy_params.delta = delta
        else:
            rf = spec.reach_and_frequency
            rf.reach_privacy_params.epsilon = rf.frequency_privacy_params.epsilon = 1.0
            rf.reach_privacy_params.delta = rf.frequency_privacy_params.delta = delta
            rf.maximum_frequency = 10
        spec_bytes = spec.SerializeToString()
        key = signing.load_private_key(self.pki.party(MC).cs_key.read_bytes())
        measurement = measurements_pb2.Measurement(
            measurement_consumer_certificate=self.certificate_names[MC.id],
            measurement_reference_id=f"test-{next(self._counter)}",
        )
        measurement.measurement_spec.message.CopyFrom(
            any_pb2.Any(type_url=MEASUREMENT_SPEC_TYPE_URL, value=spec_bytes)
        )
        measurement.measurement_spec.signature = signing.sign(key, spec_bytes)
        measurement.measurement_spec.signature_algorithm_oid = (
            signing.default_signature_algorithm_oid(key)
        )
        for edp in edps:
            entry = measurement.data_providers.add(key=f"dataProviders/{edp.data_provider_id}")
            entry.value.data_provider_certificate = self.certificate_names[edp.data_provider_id]
            entry.value.data_provider_public_key.format = crypto_pb2.EncryptionPublicKey.TINK_KEYSET
            entry.value.data_provider_public_key.data = f"{edp.data_provider_id} key".encode()
            entry.value.encrypted_requisition_spec.ciphertext = edp.encrypted_requisition_spec
            entry.value.encrypted_requisition_spec.type_url = SIGNED_MESSAGE_TYPE_URL
            entry.value.nonce_hash = nonce_hash(edp.nonce)
        request = measurements_pb2.CreateMeasurementRequest(
            parent=f"measurementConsumers/{MC.id}", measurement=measurement, request_id=request_id
        )
        return MeasurementRequest(request, edps)

    def requisition_params(
        self, duchy_id: str, protocol: str
    ) -> computation_pb2.ComputationParticipant.RequisitionParams:
        """What a duchy's mill would send for `protocol` (keys are opaque bytes to the Kingdom)."""
        params = computation_pb2.ComputationParticipant.RequisitionParams(
            duchy_certificate=self.certificate_names[duchy_id]
        )
        if protocol in ("liquid_legions_v2", "reach_only_liquid_legions_v2"):
            ll = getattr(params, protocol)
            ll.el_gamal_public_key = crypto_pb2.ElGamalPublicKey(
                elliptic_curve_id=415, generator=b"g" * 33, element=duchy_id.encode() * 3
            ).SerializeToString()
            ll.el_gamal_public_key_signature = b"signature of " + duchy_id.encode()
            ll.el_gamal_public_key_signature_algorithm_oid = signing.ECDSA_WITH_SHA256_OID
        elif protocol == "honest_majority_share_shuffle":
            hmss = params.honest_majority_share_shuffle
            hmss.SetInParent()
            if duchy_id != "aggregator":
                hmss.tink_public_key = crypto_pb2.EncryptionPublicKey(
                    format=crypto_pb2.EncryptionPublicKey.TINK_KEYSET,
                    data=duchy_id.encode() + b" hpke",
                ).SerializeToString()
                hmss.tink_public_key_signature = b"sig"
                hmss.tink_public_key_signature_algorithm_oid = signing.ECDSA_WITH_SHA256_OID
        else:
            params.trus_tee.SetInParent()
        return params

    def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)


class Flow:
    """Plays the parties of a measurement through the servicers, each as its own principal."""

    def __init__(self, world: KingdomWorld) -> None:
        self.world = world
        self.servicers = world.servicers

    async def create(self, request: MeasurementRequest) -> measurements_pb2.Measurement:
        with acting_as(MC):
            return await self.servicers.measurements.CreateMeasurement(request.request, None)

    async def get_measurement(self, name: str) -> measurements_pb2.Measurement:
        with acting_as(MC):
            return await self.servicers.measurements.GetMeasurement(
                measurements_pb2.GetMeasurementRequest(name=name), None
            )

    async def computation_of(
        self, measurement: measurements_pb2.Measurement
    ) -> computation_pb2.Computation:
        parsed = names.parse_measurement(measurement.name)
        assert parsed is not None
        snapshot = await self.world.repositories.measurements.get(*parsed)
        assert snapshot.measurement.computation_id is not None
        return computation_view(snapshot)

    async def set_params(
        self, computation: computation_pb2.Computation, duchy_id: str
    ) -> computation_pb2.ComputationParticipant:
        protocol = computation.mpc_protocol_config.WhichOneof("protocol")
        assert protocol is not None
        with acting_as(Principal.duchy(duchy_id)):
            return await self.servicers.participants.SetParticipantRequisitionParams(
                participants_pb2.SetParticipantRequisitionParamsRequest(
                    name=f"{computation.name}/participants/{duchy_id}",
                    requisition_params=self.world.requisition_params(duchy_id, protocol),
                ),
                None,
            )

    async def set_all_params(self, computation: computation_pb2.Computation) -> None:
        for participant in computation.computation_participants:
            await self.set_params(computation, participant.name.rsplit("/", 1)[1])

    async def confirm(
        self, computation: computation_pb2.Computation, duchy_id: str
    ) -> computation_pb2.ComputationParticipant:
        with acting_as(Principal.duchy(duchy_id)):
            return await self.servicers.participants.ConfirmComputationParticipant(
                participants_pb2.ConfirmComputationParticipantRequest(
                    name=f"{computation.name}/participants/{duchy_id}"
                ),
                None,
            )

    async def confirm_all(self, computation: computation_pb2.Computation) -> None:
        for participant in computation.computation_participants:
            await self.confirm(computation, participant.name.rsplit("/", 1)[1])

    async def fulfill(
        self,
        computation: computation_pb2.Computation,
        requisition: computation_pb2.Requisition,
        duchy_id: str,
        nonce: int,
        etag: str = "",
    ) -> computation_pb2.Requisition:
        with acting_as(Principal.duchy(duchy_id)):
            return await self.servicers.system_requisitions.FulfillRequisition(
                system_requisitions_pb2.FulfillRequisitionRequest(
                    name=requisition.name, nonce=nonce, etag=etag
                ),
                None,
            )

    async def fulfill_all(
        self, request: MeasurementRequest, computation: computation_pb2.Computation
    ) -> None:
        """Each requisition by its assigned duchy (LLv2: the first participant)."""
        requisitions = await self.edp_requisitions(request)
        first = computation.computation_participants[0].name.rsplit("/", 1)[1]
        for system in computation.requisitions:
            assigned = system.fulfilling_computation_participant.rsplit("/", 1)[-1] or first
            requisition_id = system.name.rsplit("/", 1)[1]
            dp_id = next(
                r.name.split("/")[1] for r in requisitions if r.name.endswith(requisition_id)
            )
            await self.fulfill(computation, system, assigned, request.nonce_of(dp_id))

    async def edp_requisitions(
        self, request: MeasurementRequest
    ) -> list[requisitions_pb2.Requisition]:
        found = []
        for edp in request.edps:
            with acting_as(Principal.data_provider(edp.data_provider_id)):
                response = await self.servicers.requisitions.ListRequisitions(
                    requisitions_pb2.ListRequisitionsRequest(
                        parent=f"dataProviders/{edp.data_provider_id}"
                    ),
                    None,
                )
            found += [
                r
                for r in response.requisitions
                if r.encrypted_requisition_spec.ciphertext == edp.encrypted_requisition_spec
            ]
        return found

    async def set_result(
        self, computation: computation_pb2.Computation, duchy_id: str, result: bytes = b"result"
    ) -> computation_pb2.Computation:
        with acting_as(Principal.duchy(duchy_id)):
            return await self.servicers.computations.SetComputationResult(
                computations_pb2.SetComputationResultRequest(
                    name=computation.name,
                    aggregator_certificate=self.world.certificate_names[duchy_id],
                    encrypted_result=result,
                    public_api_version="v1",
                ),
                None,
            )

    async def refresh(
        self, computation: computation_pb2.Computation
    ) -> computation_pb2.Computation:
        computation_id = names.parse_computation(computation.name)
        assert computation_id is not None
        return computation_view(await self.world.repositories.computations.get(computation_id))
