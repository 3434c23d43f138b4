"""endpoints.json: schema, relative PKI path, strictness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cmms.clients.endpoints import DuchyEndpoints, Endpoints, KingdomEndpoints
from cmms.common.errors import UserError


def test_round_trip_with_a_relative_pki_dir(tmp_path: Path) -> None:
    endpoints = Endpoints(
        pki_dir=Path("pki"),
        kingdom=KingdomEndpoints(public_api="127.0.0.1:8443", system_api="127.0.0.1:8444"),
        duchies={"worker1": DuchyEndpoints(requisition_fulfillment="127.0.0.1:9101")},
        measurement_consumers=["mc1"],
        data_providers=["edp1"],
    )
    path = tmp_path / "endpoints.json"
    endpoints.write(path)
    loaded = Endpoints.load(path)
    assert loaded.pki_dir == tmp_path / "pki"
    assert loaded.requisition_fulfillment_targets() == {"worker1": "127.0.0.1:9101"}
    assert loaded.model_copy(update={"pki_dir": Path("pki")}) == endpoints


@pytest.mark.parametrize(
    "document",
    [
        {"pki_dir": "p", "kingdom": {"public_api": "a:1"}},
        {"pki_dir": "p", "kingdom": {"public_api": "a:1", "system_api": "b:2"}, "surprise": 1},
        {"version": 2, "pki_dir": "p", "kingdom": {"public_api": "a:1", "system_api": "b:2"}},
    ],
)
def test_malformed_files_are_user_errors(tmp_path: Path, document: dict[str, object]) -> None:
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps(document))
    with pytest.raises(UserError, match="invalid endpoints file"):
        Endpoints.load(path)


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read"):
        Endpoints.load(tmp_path / "nope.json")
