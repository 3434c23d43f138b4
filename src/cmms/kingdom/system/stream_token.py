"""The stream continuation token: unpadded URL-safe base64 of a serialized
`StreamActiveComputationsContinuationToken` (duchies decode it too, so the format is fixed)."""

from __future__ import annotations

import base64
import binascii
import re

from google.protobuf.message import DecodeError

from cmms.api.system.v1 import computations_pb2
from cmms.kingdom.db.computations import StreamPosition
from cmms.kingdom.ids import MAX_EXTERNAL_ID
from cmms.kingdom.timestamps import from_proto, to_proto

# Padded input is accepted too, as the duchies' token store accepts it.
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def encode_token(position: StreamPosition) -> str:
    message = computations_pb2.StreamActiveComputationsContinuationToken(
        last_seen_update_time=to_proto(position.update_time_us),
        last_seen_external_computation_id=position.computation_id,
    )
    return base64.urlsafe_b64encode(message.SerializeToString()).rstrip(b"=").decode("ascii")


def decode_token(token: str) -> StreamPosition | None:
    """None for the empty token (start from the beginning); `ValueError` if malformed."""
    if not token:
        return None
    # The decoder would silently skip characters outside the alphabet; refuse them instead.
    if not _ALPHABET.fullmatch(token):
        raise ValueError("malformed continuation token: not URL-safe base64")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        message = computations_pb2.StreamActiveComputationsContinuationToken.FromString(raw)
    except (binascii.Error, ValueError, DecodeError) as exc:
        raise ValueError(f"malformed continuation token: {exc}") from exc
    # Out-of-range values would otherwise reach the database as integers it cannot bind.
    try:
        message.last_seen_update_time.ToDatetime()
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"malformed continuation token: {exc}") from exc
    if message.last_seen_external_computation_id > MAX_EXTERNAL_ID:
        raise ValueError("malformed continuation token: the computation id is out of range")
    return StreamPosition(
        from_proto(message.last_seen_update_time), message.last_seen_external_computation_id
    )
