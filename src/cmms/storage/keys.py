"""Deterministic blob keys for the duchy's stores (duchy_internals §1.7).

The database records a *path* without the store prefix (`{global_id}/{STAGE}/{blob_id}`,
`{global_id}/{requisition_id}`); the physical *key* adds `computations/` or `requisitions/`.
Keys carry no random parts, so a retried write lands on the same key and simply overwrites.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cmms.storage.base import BlobStore
from cmms.storage.errors import InvalidBlobKeyError
from cmms.storage.prefixed import PrefixedBlobStore

COMPUTATIONS_PREFIX = "computations/"
REQUISITIONS_PREFIX = "requisitions/"

_STAGE_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_BLOB_ID = re.compile(r"0|[1-9][0-9]*")
# Identifiers become single key segments: printable, no separators, no dot-only names.
_IDENTIFIER = re.compile(r"[A-Za-z0-9_\-=.~+]+")


@dataclass(frozen=True, slots=True)
class ComputationBlobKey:
    """One stage blob of a computation: `computations/{global_id}/{stage_name}/{blob_id}`."""

    global_id: str
    stage_name: str
    blob_id: int

    def __post_init__(self) -> None:
        _check_identifier("global computation id", self.global_id)
        if not _STAGE_NAME.fullmatch(self.stage_name):
            raise InvalidBlobKeyError(
                f"stage name {self.stage_name!r} must be an enum name like 'WAIT_SETUP_PHASE_INPUTS'"
            )
        if isinstance(self.blob_id, bool) or not isinstance(self.blob_id, int) or self.blob_id < 0:
            raise InvalidBlobKeyError(f"blob id must be a non-negative int, got {self.blob_id!r}")

    @property
    def path(self) -> str:
        """The form recorded in the database (no store prefix)."""
        return f"{self.global_id}/{self.stage_name}/{self.blob_id}"

    @property
    def key(self) -> str:
        """The physical key in the blob store."""
        return COMPUTATIONS_PREFIX + self.path

    @classmethod
    def from_path(cls, path: str) -> ComputationBlobKey:
        parts = path.split("/")
        if len(parts) != 3 or not _BLOB_ID.fullmatch(parts[2]):
            raise InvalidBlobKeyError(
                f"computation blob path {path!r} is not '{{global_id}}/{{STAGE_NAME}}/{{blob_id}}'"
            )
        return cls(parts[0], parts[1], int(parts[2]))

    @classmethod
    def parse(cls, key: str) -> ComputationBlobKey:
        return cls.from_path(_strip_prefix(key, COMPUTATIONS_PREFIX))


@dataclass(frozen=True, slots=True)
class RequisitionBlobKey:
    """One fulfilled requisition's data: `requisitions/{global_id}/{requisition_id}`."""

    global_id: str
    requisition_id: str

    def __post_init__(self) -> None:
        _check_identifier("global computation id", self.global_id)
        _check_identifier("requisition id", self.requisition_id)

    @property
    def path(self) -> str:
        """The form recorded in the database (no store prefix)."""
        return f"{self.global_id}/{self.requisition_id}"

    @property
    def key(self) -> str:
        """The physical key in the blob store."""
        return REQUISITIONS_PREFIX + self.path

    @classmethod
    def from_path(cls, path: str) -> RequisitionBlobKey:
        parts = path.split("/")
        if len(parts) != 2:
            raise InvalidBlobKeyError(
                f"requisition blob path {path!r} is not '{{global_id}}/{{requisition_id}}'"
            )
        return cls(parts[0], parts[1])

    @classmethod
    def parse(cls, key: str) -> RequisitionBlobKey:
        return cls.from_path(_strip_prefix(key, REQUISITIONS_PREFIX))


def computation_blob_key(global_id: str, stage_name: str, blob_id: int) -> str:
    return ComputationBlobKey(global_id, stage_name, blob_id).key


def requisition_blob_key(global_id: str, requisition_id: str) -> str:
    return RequisitionBlobKey(global_id, requisition_id).key


def computation_prefix(global_id: str) -> str:
    """The prefix of every stage blob of one computation (what the cleaner deletes)."""
    _check_identifier("global computation id", global_id)
    return f"{COMPUTATIONS_PREFIX}{global_id}/"


def requisition_prefix(global_id: str) -> str:
    """The prefix of every requisition blob of one computation."""
    _check_identifier("global computation id", global_id)
    return f"{REQUISITIONS_PREFIX}{global_id}/"


def _strip_prefix(key: str, prefix: str) -> str:
    if not key.startswith(prefix):
        raise InvalidBlobKeyError(f"blob key {key!r} does not start with {prefix!r}")
    return key[len(prefix) :]


def _check_identifier(what: str, value: str) -> None:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value) or set(value) == {"."}:
        raise InvalidBlobKeyError(
            f"{what} {value!r} must be a non-empty run of letters, digits and '_-=.~+'"
        )


def computation_store(store: BlobStore) -> PrefixedBlobStore:
    """The view of `store` addressed by `ComputationBlobKey.path` (the database's form)."""
    return PrefixedBlobStore(store, COMPUTATIONS_PREFIX)


def requisition_store(store: BlobStore) -> PrefixedBlobStore:
    """The view of `store` addressed by `RequisitionBlobKey.path` (the database's form)."""
    return PrefixedBlobStore(store, REQUISITIONS_PREFIX)
