"""Who is calling: principals, the root-SKID trust config, and the current caller of an RPC.

Every party has its own root CA and its TLS certificates are issued directly by that root, so the
Authority Key Identifier of a peer's leaf certificate names the peer's root. The trust config maps
root Subject Key Identifiers to principals; a server resolves each caller's AKID through it.

Trust config file (JSON)::

    {"root_skid_to_principal": {
        "<root SKID, lowercase hex>": {"kind": "duchy", "id": "worker1", "name": "duchies/worker1"},
        ...}}
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmms.common import x509 as x509_utils


class PrincipalKind(enum.StrEnum):
    """The kinds of party that can call an API."""

    DUCHY = "duchy"
    DATA_PROVIDER = "data_provider"
    MEASUREMENT_CONSUMER = "measurement_consumer"
    KINGDOM = "kingdom"


_COLLECTIONS = {
    PrincipalKind.DUCHY: "duchies",
    PrincipalKind.DATA_PROVIDER: "dataProviders",
    PrincipalKind.MEASUREMENT_CONSUMER: "measurementConsumers",
}
_KINGDOM_NAME = "kingdom"
PRINCIPAL_ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated party: its kind and id (e.g. duchy `worker1`, resource `duchies/worker1`)."""

    kind: PrincipalKind
    id: str

    def __post_init__(self) -> None:
        if self.kind is PrincipalKind.KINGDOM:
            if self.id != _KINGDOM_NAME:
                raise ValueError(
                    f"the kingdom principal's id is {_KINGDOM_NAME!r}, not {self.id!r}"
                )
        elif not PRINCIPAL_ID_PATTERN.match(self.id):
            raise ValueError(
                f"bad {self.kind} id {self.id!r}: use lowercase letters, digits and '-', "
                "starting with a letter"
            )

    @property
    def resource_name(self) -> str:
        """Resource-style name: `duchies/{id}`, `dataProviders/{id}`, `measurementConsumers/{id}` or `kingdom`."""
        if self.kind is PrincipalKind.KINGDOM:
            return _KINGDOM_NAME
        return f"{_COLLECTIONS[self.kind]}/{self.id}"

    def __str__(self) -> str:
        return self.resource_name

    @classmethod
    def kingdom(cls) -> Principal:
        """The Kingdom."""
        return cls(PrincipalKind.KINGDOM, _KINGDOM_NAME)

    @classmethod
    def duchy(cls, duchy_id: str) -> Principal:
        """The duchy `duchy_id`."""
        return cls(PrincipalKind.DUCHY, duchy_id)

    @classmethod
    def data_provider(cls, data_provider_id: str) -> Principal:
        """The data provider `data_provider_id`."""
        return cls(PrincipalKind.DATA_PROVIDER, data_provider_id)

    @classmethod
    def measurement_consumer(cls, measurement_consumer_id: str) -> Principal:
        """The measurement consumer `measurement_consumer_id`."""
        return cls(PrincipalKind.MEASUREMENT_CONSUMER, measurement_consumer_id)

    @classmethod
    def from_resource_name(cls, name: str) -> Principal:
        """Inverse of `resource_name`; raises `ValueError` for anything else."""
        if name == _KINGDOM_NAME:
            return cls.kingdom()
        collection, _, principal_id = name.partition("/")
        for kind, known in _COLLECTIONS.items():
            if collection == known:
                return cls(kind, principal_id)
        raise ValueError(f"not a principal resource name: {name!r}")


class TrustConfigError(ValueError):
    """A trust config file is malformed."""


@dataclass(frozen=True)
class TrustConfig:
    """Root Subject Key Identifier -> principal: which root CA belongs to which party."""

    principals_by_root_skid: Mapping[bytes, Principal]

    def principal_for_akid(self, akid: bytes) -> Principal | None:
        """The principal whose root's SKID equals `akid`, or None if no trusted root matches."""
        return self.principals_by_root_skid.get(akid)

    def root_skid_of(self, principal: Principal) -> bytes | None:
        """The SKID of `principal`'s root, or None if it has none here."""
        for skid, known in self.principals_by_root_skid.items():
            if known == principal:
                return skid
        return None

    @property
    def principals(self) -> frozenset[Principal]:
        """Every principal with a trusted root."""
        return frozenset(self.principals_by_root_skid.values())

    def without(self, *principals: Principal) -> TrustConfig:
        """A copy that no longer recognises `principals`."""
        dropped = set(principals)
        return TrustConfig(
            {skid: p for skid, p in self.principals_by_root_skid.items() if p not in dropped}
        )

    @classmethod
    def from_root_certificates(cls, roots: Iterable[tuple[Principal, bytes]]) -> TrustConfig:
        """Build from (principal, root certificate PEM) pairs."""
        mapping: dict[bytes, Principal] = {}
        for principal, pem in roots:
            skid = x509_utils.subject_key_identifier(x509_utils.load_pem_certificate(pem))
            if skid in mapping:
                raise TrustConfigError(
                    f"{principal} and {mapping[skid]} share root SKID {skid.hex()}"
                )
            mapping[skid] = principal
        return cls(mapping)

    def to_json(self) -> str:
        """The JSON document `load` reads."""
        document = {
            "root_skid_to_principal": {
                skid.hex(): {"kind": p.kind.value, "id": p.id, "name": p.resource_name}
                for skid, p in sorted(self.principals_by_root_skid.items())
            }
        }
        return json.dumps(document, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> TrustConfig:
        """Parse the JSON document; raises `TrustConfigError` when malformed."""
        try:
            document = json.loads(text)
            entries: dict[str, Any] = document["root_skid_to_principal"]
            mapping = {bytes.fromhex(skid): _principal_from_entry(e) for skid, e in entries.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TrustConfigError(f"malformed trust config: {exc}") from exc
        return cls(mapping)

    @classmethod
    def load(cls, path: Path) -> TrustConfig:
        """Read a trust config file."""
        return cls.from_json(path.read_text(encoding="utf-8"))


def _principal_from_entry(entry: Mapping[str, Any]) -> Principal:
    principal = Principal(PrincipalKind(entry["kind"]), entry["id"])
    name = entry.get("name")
    if name is not None and name != principal.resource_name:
        raise ValueError(f"name {name!r} does not match {principal.resource_name!r}")
    return principal


def akid_of_pem_certificate(pem: bytes) -> bytes | None:
    """The Authority Key Identifier of a PEM leaf certificate, if it carries one."""
    return x509_utils.authority_key_identifier(x509_utils.load_pem_certificate(pem))


class NoPrincipalError(LookupError):
    """Code asked for the caller's principal outside an authenticated call."""


_current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "cmms_current_principal", default=None
)

PrincipalProvider = Callable[[], Principal]


def current_principal() -> Principal:
    """The authenticated caller of the RPC being handled; raises `NoPrincipalError` outside one."""
    principal = _current_principal.get()
    if principal is None:
        raise NoPrincipalError("no authenticated caller in this context")
    return principal


@contextlib.contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    """Make `principal` the current caller inside the block (the RPC guard and tests use this)."""
    token = _current_principal.set(principal)
    try:
        yield principal
    finally:
        _current_principal.reset(token)
