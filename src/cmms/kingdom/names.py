"""Resource names of the public and system APIs, parsed into ids and built back.

Parsers return None for anything malformed, so each RPC can choose its own status code.
MC, EDP and duchy ids are principal ids (`mc1`, `edp1`, `worker1`); every other id is an
external id (see `cmms.kingdom.ids`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from cmms.kingdom.ids import decode_external_id, encode_external_id

_PARTY_ID = r"[a-z][a-z0-9-]{0,62}"
_EXTERNAL = r"[A-Za-z0-9_-]{11}"


class OwnerKind(enum.StrEnum):
    """Who can own certificates."""

    MEASUREMENT_CONSUMER = "measurement_consumer"
    DATA_PROVIDER = "data_provider"
    DUCHY = "duchy"


_OWNER_COLLECTIONS = {
    OwnerKind.MEASUREMENT_CONSUMER: "measurementConsumers",
    OwnerKind.DATA_PROVIDER: "dataProviders",
    OwnerKind.DUCHY: "duchies",
}
_OWNER_BY_COLLECTION = {v: k for k, v in _OWNER_COLLECTIONS.items()}


@dataclass(frozen=True, slots=True)
class Owner:
    kind: OwnerKind
    id: str

    @property
    def name(self) -> str:
        return f"{_OWNER_COLLECTIONS[self.kind]}/{self.id}"


@dataclass(frozen=True, slots=True)
class CertificateKey:
    owner: Owner
    certificate_id: int

    @property
    def name(self) -> str:
        return f"{self.owner.name}/certificates/{encode_external_id(self.certificate_id)}"


def _match(pattern: str, text: str) -> tuple[str, ...] | None:
    found = re.fullmatch(pattern, text)
    return None if found is None else found.groups()


def _external(text: str) -> int | None:
    try:
        return decode_external_id(text)
    except ValueError:
        return None


def parse_owner(name: str) -> Owner | None:
    groups = _match(rf"(measurementConsumers|dataProviders|duchies)/({_PARTY_ID})", name)
    if groups is None:
        return None
    return Owner(_OWNER_BY_COLLECTION[groups[0]], groups[1])


def parse_measurement_consumer(name: str) -> str | None:
    owner = parse_owner(name)
    return owner.id if owner and owner.kind is OwnerKind.MEASUREMENT_CONSUMER else None


def parse_data_provider(name: str) -> str | None:
    owner = parse_owner(name)
    return owner.id if owner and owner.kind is OwnerKind.DATA_PROVIDER else None


def parse_duchy(name: str) -> str | None:
    owner = parse_owner(name)
    return owner.id if owner and owner.kind is OwnerKind.DUCHY else None


def parse_certificate(name: str) -> CertificateKey | None:
    groups = _match(rf"([A-Za-z]+/{_PARTY_ID})/certificates/({_EXTERNAL})", name)
    if groups is None:
        return None
    owner = parse_owner(groups[0])
    certificate_id = _external(groups[1])
    if owner is None or certificate_id is None:
        return None
    return CertificateKey(owner, certificate_id)


def _child(parent_pattern: str, collection: str, name: str) -> tuple[str, int] | None:
    groups = _match(rf"{parent_pattern}/(?:{collection})/({_EXTERNAL})", name)
    if groups is None:
        return None
    child = _external(groups[1])
    return None if child is None else (groups[0], child)


def parse_measurement(name: str) -> tuple[str, int] | None:
    """(MC id, measurement id)."""
    return _child(rf"measurementConsumers/({_PARTY_ID})", "measurements", name)


def parse_requisition(name: str) -> tuple[str, int] | None:
    """(EDP id, requisition id)."""
    return _child(rf"dataProviders/({_PARTY_ID})", "requisitions", name)


def parse_event_group(name: str) -> tuple[str, int] | None:
    """(EDP or MC id, event group id); `…/eventGroups/…` under either parent."""
    return _child(rf"(?:dataProviders|measurementConsumers)/({_PARTY_ID})", "eventGroups", name)


def parse_computation(name: str) -> int | None:
    groups = _match(rf"computations/({_EXTERNAL})", name)
    return None if groups is None else _external(groups[0])


def parse_participant(name: str) -> tuple[int, str] | None:
    """(computation id, duchy id) of `computations/{c}/participants/{duchy}`."""
    groups = _match(rf"computations/({_EXTERNAL})/participants/({_PARTY_ID})", name)
    if groups is None:
        return None
    computation_id = _external(groups[0])
    return None if computation_id is None else (computation_id, groups[1])


def parse_system_requisition(name: str) -> tuple[int, int] | None:
    """(computation id, requisition id) of `computations/{c}/requisitions/{r}`."""
    groups = _match(rf"computations/({_EXTERNAL})/requisitions/({_EXTERNAL})", name)
    if groups is None:
        return None
    computation_id, requisition_id = _external(groups[0]), _external(groups[1])
    if computation_id is None or requisition_id is None:
        return None
    return computation_id, requisition_id


def measurement_consumer_name(mc_id: str) -> str:
    return f"measurementConsumers/{mc_id}"


def data_provider_name(dp_id: str) -> str:
    return f"dataProviders/{dp_id}"


def duchy_name(duchy_id: str) -> str:
    return f"duchies/{duchy_id}"


def certificate_name(kind: OwnerKind, owner_id: str, certificate_id: int) -> str:
    return CertificateKey(Owner(kind, owner_id), certificate_id).name


def measurement_name(mc_id: str, measurement_id: int) -> str:
    return f"measurementConsumers/{mc_id}/measurements/{encode_external_id(measurement_id)}"


def requisition_name(dp_id: str, requisition_id: int) -> str:
    return f"dataProviders/{dp_id}/requisitions/{encode_external_id(requisition_id)}"


def event_group_name(dp_id: str, event_group_id: int) -> str:
    return f"dataProviders/{dp_id}/eventGroups/{encode_external_id(event_group_id)}"


def computation_name(computation_id: int) -> str:
    return f"computations/{encode_external_id(computation_id)}"


def participant_name(computation_id: int, duchy_id: str) -> str:
    return f"{computation_name(computation_id)}/participants/{duchy_id}"


def system_requisition_name(computation_id: int, requisition_id: int) -> str:
    return f"{computation_name(computation_id)}/requisitions/{encode_external_id(requisition_id)}"


def log_entry_name(computation_id: int, duchy_id: str, entry_id: int) -> str:
    return f"{participant_name(computation_id, duchy_id)}/logEntries/{encode_external_id(entry_id)}"
