"""`ContinuationTokens`: the Herald's resume point in the Kingdom's stream (duchy_internals §3).

A token is the base64url encoding (written without padding; padded input is accepted too) of a
serialized system `StreamActiveComputationsContinuationToken`. Only its
`last_seen_update_time` matters here: a token older than the stored one is refused.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import DecodeError

from cmms.api.internal.duchy.v1 import (
    continuation_tokens_service_pb2,
    continuation_tokens_service_pb2_grpc,
)
from cmms.api.system.v1 import computations_pb2
from cmms.duchy.db import ContinuationTokensRepositoryInterface
from cmms.duchy.db.errors import InvalidArgumentError
from cmms.duchy.internal_api.errors import translating_errors

pb = continuation_tokens_service_pb2
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


class MalformedContinuationTokenError(InvalidArgumentError):
    reason = "CONTINUATION_TOKEN_MALFORMED"


def decode_continuation_token(
    token: str,
) -> computations_pb2.StreamActiveComputationsContinuationToken:
    """Parse a token; raises `MalformedContinuationTokenError` for anything undecodable."""
    if not _BASE64URL.fullmatch(token):
        raise MalformedContinuationTokenError("continuation token is not base64url")
    unpadded = token.rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
        message = computations_pb2.StreamActiveComputationsContinuationToken.FromString(raw)
        # A time outside the Timestamp range would only fail later, as an unclassified error.
        _seen_time(message)
    except (binascii.Error, ValueError, OverflowError, DecodeError) as error:
        raise MalformedContinuationTokenError(
            f"continuation token does not decode: {error}"
        ) from error
    return message


def encode_continuation_token(
    message: computations_pb2.StreamActiveComputationsContinuationToken,
) -> str:
    return base64.urlsafe_b64encode(message.SerializeToString()).decode("ascii").rstrip("=")


def _seen_time(message: computations_pb2.StreamActiveComputationsContinuationToken) -> datetime:
    return message.last_seen_update_time.ToDatetime(tzinfo=UTC)


class ContinuationTokensServicer(continuation_tokens_service_pb2_grpc.ContinuationTokensServicer):
    def __init__(self, repository: ContinuationTokensRepositoryInterface) -> None:
        self._repository = repository

    @translating_errors
    async def GetContinuationToken(
        self, request: pb.GetContinuationTokenRequest, context: Any
    ) -> pb.GetContinuationTokenResponse:
        return pb.GetContinuationTokenResponse(
            token=await self._repository.get_continuation_token()
        )

    @translating_errors
    async def SetContinuationToken(
        self, request: pb.SetContinuationTokenRequest, context: Any
    ) -> pb.SetContinuationTokenResponse:
        decoded = decode_continuation_token(request.token)
        await self._repository.set_continuation_token(request.token, _seen_time(decoded))
        return pb.SetContinuationTokenResponse()
