"""Converting values between Python and the Spanner SDK.

The SDK sends a `bytes` value as-is in a string field, where Spanner expects base64, and returns
BYTES columns of query results still base64-encoded; so bytes are encoded on the way in and
decoded on the way out. Timestamps come back as `DatetimeWithNanoseconds`; callers get plain aware
datetimes at microsecond precision, equal to what they stored.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime


def bytes_in(value: bytes) -> bytes:
    return base64.b64encode(value)


def bytes_out(value: bytes | str) -> bytes:
    return base64.b64decode(value)


def optional_bytes_out(value: bytes | str | None) -> bytes | None:
    return None if value is None else bytes_out(value)


def time_out(value: datetime) -> datetime:
    moment = value.astimezone(UTC)
    return datetime(
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
        tzinfo=UTC,
    )


def optional_time_out(value: datetime | None) -> datetime | None:
    return None if value is None else time_out(value)
