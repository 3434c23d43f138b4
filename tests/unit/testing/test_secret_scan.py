"""The secret scanner finds a needle in every encoding and place the privacy tests rely on."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from pathlib import Path

import pytest

from cmms.testing import secret_scan
from cmms.testing.secret_scan import NeedleSet, duchy_storage

SECRET = bytes.fromhex("8f3a5c7e19d24b6a0c1e5f7a9b3d2c4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c")


def needles() -> NeedleSet:
    found = NeedleSet()
    found.add("the secret", SECRET)
    return found


@pytest.mark.parametrize("before", [0, 1, 2, 3, 7])
def test_inside_longer_base64_at_every_alignment(before: int) -> None:
    container = os.urandom(before) + SECRET + os.urandom(11)
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        text = b'{"details": "' + encode(container) + b'"}'
        assert {f.label for f in needles().find(text, "json")} == {"the secret"}


def test_hex_repr_and_json_repr() -> None:
    line = json.dumps({"event": "oops", "key": repr(SECRET), "hex": SECRET.hex().upper()})
    encodings = {f.encoding for f in needles().find(line.encode(), "log")}
    assert {"HEX", "json repr"} <= encodings


def test_across_chunk_boundaries_and_never_in_random_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secret_scan, "_CHUNK", 64)
    noise = os.urandom(1000)
    for position in (0, 60, 63, 64, 100, 1000 - len(SECRET)):
        data = noise[:position] + SECRET + noise[position + len(SECRET) :]
        [finding] = needles().find(data, "blob")
        assert (finding.encoding, finding.offset) == ("raw", position)
    assert needles().find(noise, "blob") == []


def test_low_entropy_needles_are_keyed_on_their_varied_part() -> None:
    plaintext = bytes(8) + bytes([1, 2, 0, 3, 4, 1, 0, 2, 1, 3])
    found = NeedleSet()
    found.add("vector window", plaintext, encoded=False)
    data = bytes(10_000) + plaintext + bytes(500)
    assert [f.offset for f in found.find(data, "zeros")] == [10_000]


def test_short_needles_are_refused() -> None:
    with pytest.raises(ValueError, match="8 bytes"):
        NeedleSet().add("short", b"1234567")


def test_storage_includes_sqlite_values_split_over_overflow_pages(tmp_path: Path) -> None:
    database = tmp_path / "duchy.db"
    connection = sqlite3.connect(database)
    connection.execute("CREATE TABLE details (id INTEGER, blob BLOB, text TEXT)")
    # Far larger than a page: the file holds it in pieces, SQLite reads it whole.
    big = os.urandom(4090) + SECRET + os.urandom(20_000)
    connection.execute("INSERT INTO details VALUES (1, ?, ?)", (big, "nothing here"))
    connection.commit()
    connection.close()
    kms_key = tmp_path / "kek.tink"
    kms_key.write_bytes(SECRET)
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / "b").write_bytes(b"x" + base64.b64encode(SECRET))

    places = duchy_storage(tmp_path, excluded=[kms_key])

    wheres = {f.where for f in needles().find_all(places)}
    assert "duchy.db:details.blob[0]" in wheres
    assert str(tmp_path / "blobs" / "b") in wheres
    assert str(kms_key) not in {where for where, _ in places}
