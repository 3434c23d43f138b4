"""External ids: random positive 63-bit integers, shown as 11-character URL-safe base64.

The integer value matters (HMSS assigns a requisition to a worker by `id mod 2`, the stream token
carries the computation id), so ids stay integers inside and are only rendered at the API edge.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable

MAX_EXTERNAL_ID = (1 << 63) - 1

IdGenerator = Callable[[], int]


def random_external_id() -> int:
    """A uniformly random id in [1, 2^63 - 1]."""
    return secrets.randbelow(MAX_EXTERNAL_ID) + 1


def encode_external_id(value: int) -> str:
    """The API form: unpadded URL-safe base64 of the 8 big-endian bytes."""
    if not 0 < value <= MAX_EXTERNAL_ID:
        raise ValueError(f"external id {value} out of range")
    return base64.urlsafe_b64encode(value.to_bytes(8, "big")).rstrip(b"=").decode("ascii")


def decode_external_id(text: str) -> int:
    """Inverse of `encode_external_id`; raises `ValueError` for anything it would not produce."""
    if len(text) != 11:
        raise ValueError(f"not an external id: {text!r}")
    try:
        raw = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not an external id: {text!r}") from exc
    value = int.from_bytes(raw, "big")
    if not 0 < value <= MAX_EXTERNAL_ID or encode_external_id(value) != text:
        raise ValueError(f"not an external id: {text!r}")
    return value
