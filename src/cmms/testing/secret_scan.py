"""Searching stored bytes and log text for secrets and plaintext data (privacy-invariant tests).

A `NeedleSet` holds labelled byte strings and every form in which they could plausibly be
written: raw, hex (both cases), base64 and base64url at each of the three alignments a substring
can have inside a longer encoded value (so a point inside a base64-encoded blob is found too),
and the escaped body of a Python `bytes` repr, also with JSON's doubled backslashes (a bytes value
passed to a JSON log line). `find` scans any amount of data in bounded memory: an 8-byte key of
each form is looked up with numpy over every position, and only candidates are compared in full.

`duchy_storage` yields what one duchy keeps: every file under its directory (database files with
their journals, the blob store), and every value of every column of every table of its SQLite
databases, read through SQLite, because values larger than a page are split across overflow
pages in the file itself.
"""

from __future__ import annotations

import base64
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KEY_LENGTH = 8
MIN_FORM_LENGTH = KEY_LENGTH
_CHUNK = 4 * 1024 * 1024
SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Finding:
    """One occurrence of a needle: what it is, in which encoding, where, at which offset."""

    label: str
    encoding: str
    where: str
    offset: int

    def __str__(self) -> str:
        return f"{self.label} ({self.encoding}) in {self.where} at {self.offset}"


@dataclass(frozen=True)
class _Form:
    label: str
    encoding: str
    data: bytes
    key_offset: int


def encodings(value: bytes) -> dict[str, bytes]:
    """The forms in which `value` could be written into storage or a log line."""
    forms: dict[str, bytes] = {
        "raw": value,
        "hex": value.hex().encode(),
        "HEX": value.hex().upper().encode(),
    }
    for skip in range(3):
        part = value[skip:]
        whole = len(part) - len(part) % 3
        forms[f"base64@{skip}"] = base64.b64encode(part[:whole])
        forms[f"base64url@{skip}"] = base64.urlsafe_b64encode(part[:whole])
    escaped = repr(value)[2:-1]
    forms["repr"] = escaped.encode()
    forms["json repr"] = escaped.replace("\\", "\\\\").encode()
    unique: dict[bytes, str] = {}
    for name, form in forms.items():
        if len(form) >= MIN_FORM_LENGTH:
            unique.setdefault(form, name)
    return {name: form for form, name in unique.items()}


def _key_offset(form: bytes) -> int:
    """The offset of the most varied 8-byte window: fewest false candidates in uniform data."""
    best, best_offset = -1, 0
    for offset in range(len(form) - KEY_LENGTH + 1):
        distinct = len(set(form[offset : offset + KEY_LENGTH]))
        if distinct > best:
            best, best_offset = distinct, offset
            if distinct == KEY_LENGTH:
                break
    return best_offset


def _words(data: np.ndarray) -> np.ndarray:
    """The little-endian uint64 starting at every position that has 8 bytes left."""
    count = data.size - KEY_LENGTH + 1
    words = np.zeros(count, dtype=np.uint64)
    for shift in range(KEY_LENGTH):
        words |= data[shift : shift + count].astype(np.uint64) << np.uint64(8 * shift)
    return words


_FILTER_BITS = 24
_FILTER_MASK = np.uint64((1 << _FILTER_BITS) - 1)


def _filter_of(keys: np.ndarray) -> np.ndarray:
    """A table of the keys' low 24 bits: one cheap gather rules out almost every position."""
    table = np.zeros(1 << _FILTER_BITS, dtype=np.bool_)
    table[(keys & _FILTER_MASK).astype(np.intp)] = True
    return table


def _matches(words: np.ndarray, keys: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Positions of `words` found in the sorted `keys`."""
    if keys.size == 0:
        return np.empty(0, dtype=np.int64)
    candidates = np.flatnonzero(table[(words & _FILTER_MASK).astype(np.intp)])
    if candidates.size == 0:
        return candidates
    found = np.searchsorted(keys, words[candidates])
    np.minimum(found, keys.size - 1, out=found)
    matched: np.ndarray = candidates[keys[found] == words[candidates]]
    return matched


class NeedleSet:
    """Labelled secrets or plaintext fragments, each searched for in all its encodings."""

    def __init__(self) -> None:
        self._by_key: dict[int, list[_Form]] = defaultdict(list)
        self._keys: np.ndarray | None = None
        self._table: np.ndarray | None = None
        self._longest = 0
        self.labels: set[str] = set()

    def add(self, label: str, value: bytes, *, encoded: bool = True) -> None:
        """Search for `value` (at least 8 bytes); `encoded=False`: only as it is (e.g. text)."""
        if len(value) < MIN_FORM_LENGTH:
            raise ValueError(f"{label}: needles need at least {MIN_FORM_LENGTH} bytes")
        forms = encodings(value) if encoded else {"as is": value}
        for encoding, form in forms.items():
            offset = _key_offset(form)
            key = int.from_bytes(form[offset : offset + KEY_LENGTH], "little")
            self._by_key[key].append(_Form(label, encoding, form, offset))
            self._longest = max(self._longest, len(form))
        self.labels.add(label)
        self._keys = None
        self._table = None

    def __len__(self) -> int:
        return len(self.labels)

    def find(self, data: bytes, where: str) -> list[Finding]:
        """Every occurrence of every needle in `data`."""
        if self._keys is None or self._table is None:
            self._keys = np.array(sorted(self._by_key), dtype=np.uint64)
            self._table = _filter_of(self._keys)
        findings: set[Finding] = set()
        overlap = max(self._longest, KEY_LENGTH)
        start = 0
        while start < len(data):
            end = min(len(data), start + _CHUNK + overlap)
            chunk = np.frombuffer(data, dtype=np.uint8, count=end - start, offset=start)
            if chunk.size >= KEY_LENGTH:
                words = _words(chunk)
                for position in _matches(words, self._keys, self._table).tolist():
                    for form in self._by_key[int(words[position])]:
                        begin = start + position - form.key_offset
                        if begin >= 0 and data.startswith(form.data, begin):
                            findings.add(Finding(form.label, form.encoding, where, begin))
            start += _CHUNK
        return sorted(findings, key=lambda f: (f.where, f.offset, f.label))

    def find_all(self, places: Iterable[tuple[str, bytes]]) -> list[Finding]:
        return [finding for where, data in places for finding in self.find(data, where)]


def stored_files(directory: Path, *, excluded: Iterable[Path] = ()) -> Iterator[tuple[str, bytes]]:
    """`(path, content)` of every file under `directory`, but `excluded`."""
    skipped = {path.resolve() for path in excluded}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.resolve() not in skipped:
            yield str(path), path.read_bytes()


def sqlite_values(database: Path) -> Iterator[tuple[str, bytes]]:
    """`(table.column[rowid], value)` of every value of every table, as bytes (text as UTF-8)."""
    connection = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        for table in tables:
            columns = [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]
            cursor = connection.execute(f'SELECT * FROM "{table}"')
            for number, row in enumerate(cursor):
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    if isinstance(value, bytes):
                        data = value
                    else:
                        data = str(value).encode()
                    yield f"{database.name}:{table}.{column}[{number}]", data
    finally:
        connection.close()


def is_sqlite_database(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(len(SQLITE_HEADER)) == SQLITE_HEADER


def duchy_storage(directory: Path, *, excluded: Iterable[Path] = ()) -> list[tuple[str, bytes]]:
    """Everything one duchy stores under `directory`: files, and SQLite values read by SQLite."""
    places = list(stored_files(directory, excluded=excluded))
    for where, _ in list(places):
        path = Path(where)
        if is_sqlite_database(path):
            places.extend(sqlite_values(path))
    return places


__all__ = [
    "Finding",
    "NeedleSet",
    "duchy_storage",
    "encodings",
    "is_sqlite_database",
    "sqlite_values",
    "stored_files",
]
