"""Kingdom resource names the Herald reads ids out of."""

from __future__ import annotations

from cmms.duchy.herald.errors import HeraldError

_COMPUTATIONS = "computations"


def global_computation_id(computation_name: str) -> str:
    """`abc` from `computations/abc`."""
    parts = computation_name.split("/")
    if len(parts) != 2 or parts[0] != _COMPUTATIONS or not parts[1]:
        raise HeraldError(f"not a computation name: {computation_name!r}")
    return parts[1]


def last_segment(name: str, collection: str) -> str:
    """`{id}` from `computations/{c}/{collection}/{id}`."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != _COMPUTATIONS or parts[2] != collection or not parts[3]:
        raise HeraldError(f"not a computations/*/{collection}/* name: {name!r}")
    return parts[3]


def requisition_id(requisition_name: str) -> str:
    return last_segment(requisition_name, "requisitions")


def participant_duchy_id(participant_name: str) -> str:
    return last_segment(participant_name, "participants")


def participant_name(computation_name: str, duchy_id: str) -> str:
    return f"{computation_name}/participants/{duchy_id}"
