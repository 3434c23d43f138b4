"""Kingdom time: microseconds since the epoch, the unit of every stored timestamp.

Integers keep the strict ordering the stream relies on exact on every database, and the
Kingdom-wide rule `max(now, previous + 1 µs)` is plain arithmetic on them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

Clock = Callable[[], datetime]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def system_clock() -> datetime:
    return datetime.now(UTC)


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {moment!r} has no time zone")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def to_proto(micros: int) -> Timestamp:
    seconds, remainder = divmod(micros, 1_000_000)
    return Timestamp(seconds=seconds, nanos=remainder * 1000)


def from_proto(timestamp: Timestamp) -> int:
    """Microseconds of a protobuf Timestamp (sub-microsecond digits are dropped)."""
    return timestamp.seconds * 1_000_000 + timestamp.nanos // 1000


def etag(micros: int) -> str:
    """A weak entity tag of an update time: SHA-256 over epoch seconds (8 bytes) and nanos (4)."""
    seconds, remainder = divmod(micros, 1_000_000)
    digest = hashlib.sha256(
        seconds.to_bytes(8, "big", signed=True) + (remainder * 1000).to_bytes(4, "big")
    ).hexdigest()
    return f'W/"{digest.upper()}"'
