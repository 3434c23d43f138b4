"""Duchy blob keys: deterministic, parseable both as store keys and as database paths."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmms.storage import InvalidBlobKeyError, validate_key
from cmms.storage.keys import (
    ComputationBlobKey,
    RequisitionBlobKey,
    computation_blob_key,
    computation_prefix,
    requisition_blob_key,
    requisition_prefix,
)

identifiers = st.from_regex(r"[A-Za-z0-9_\-=~+][A-Za-z0-9_\-=.~+]{0,30}", fullmatch=True)
stage_names = st.from_regex(r"[A-Z][A-Z0-9_]{0,40}", fullmatch=True)


def test_computation_key_layout() -> None:
    key = ComputationBlobKey("AbC123", "WAIT_SETUP_PHASE_INPUTS", 0)
    assert key.path == "AbC123/WAIT_SETUP_PHASE_INPUTS/0"
    assert key.key == "computations/AbC123/WAIT_SETUP_PHASE_INPUTS/0"
    assert computation_blob_key("AbC123", "WAIT_SETUP_PHASE_INPUTS", 0) == key.key


def test_requisition_key_layout() -> None:
    key = RequisitionBlobKey("AbC123", "req-7")
    assert key.path == "AbC123/req-7"
    assert key.key == "requisitions/AbC123/req-7"
    assert requisition_blob_key("AbC123", "req-7") == key.key


def test_keys_are_deterministic() -> None:
    assert computation_blob_key("g", "SETUP", 3) == computation_blob_key("g", "SETUP", 3)
    assert requisition_blob_key("g", "r") == requisition_blob_key("g", "r")


def test_prefixes_cover_one_computation_only() -> None:
    assert computation_blob_key("g1", "SETUP", 0).startswith(computation_prefix("g1"))
    assert not computation_blob_key("g10", "SETUP", 0).startswith(computation_prefix("g1"))
    assert requisition_blob_key("g1", "r").startswith(requisition_prefix("g1"))
    assert not requisition_blob_key("g10", "r").startswith(requisition_prefix("g1"))


@given(identifiers, stage_names, st.integers(min_value=0, max_value=2**63))
def test_computation_keys_round_trip(global_id: str, stage: str, blob_id: int) -> None:
    key = ComputationBlobKey(global_id, stage, blob_id)
    validate_key(key.key)
    assert ComputationBlobKey.parse(key.key) == key
    assert ComputationBlobKey.from_path(key.path) == key


@given(identifiers, identifiers)
def test_requisition_keys_round_trip(global_id: str, requisition_id: str) -> None:
    key = RequisitionBlobKey(global_id, requisition_id)
    validate_key(key.key)
    assert RequisitionBlobKey.parse(key.key) == key
    assert RequisitionBlobKey.from_path(key.path) == key


@pytest.mark.parametrize(
    ("global_id", "stage", "blob_id"),
    [
        ("", "SETUP", 0),
        ("a/b", "SETUP", 0),
        ("..", "SETUP", 0),
        ("g", "setup", 0),
        ("g", "SET/UP", 0),
        ("g", "SETUP", -1),
        ("g", "SETUP", True),
    ],
)
def test_bad_computation_key_parts_are_rejected(global_id: str, stage: str, blob_id: int) -> None:
    with pytest.raises(InvalidBlobKeyError):
        ComputationBlobKey(global_id, stage, blob_id)


@pytest.mark.parametrize(
    "key",
    [
        "requisitions/g/r",
        "computations/g/SETUP",
        "computations/g/SETUP/0/extra",
        "computations/g/SETUP/01",
        "computations/g/SETUP/x",
        "g/SETUP/0",
    ],
)
def test_malformed_computation_keys_do_not_parse(key: str) -> None:
    with pytest.raises(InvalidBlobKeyError):
        ComputationBlobKey.parse(key)


@pytest.mark.parametrize(
    "key", ["computations/g/r", "requisitions/g", "requisitions/g/r/x", "requisitions/g/"]
)
def test_malformed_requisition_keys_do_not_parse(key: str) -> None:
    with pytest.raises(InvalidBlobKeyError):
        RequisitionBlobKey.parse(key)
