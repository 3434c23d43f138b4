"""Error translation and proto conversion of the internal API, without a server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from sqlalchemy.exc import OperationalError

from cmms.api.internal.duchy.v1 import computation_protocols_pb2, computation_token_pb2
from cmms.common.grpc import StatusError
from cmms.duchy.db import BlobDependency, BlobRef, ComputationToken
from cmms.duchy.db.errors import InvalidArgumentError, StaleVersionError
from cmms.duchy.internal_api.convert import (
    ConversionError,
    edit_token_from_proto,
    output_paths,
    stage_from_proto,
    stage_to_proto,
    token_to_proto,
)
from cmms.duchy.internal_api.errors import ERROR_DOMAIN, STATUS_DETAILS_KEY, translating_errors
from cmms.storage import BlobStoreError


class RecordingContext:
    def __init__(self) -> None:
        self.trailing: tuple[tuple[str, bytes], ...] = ()

    def set_trailing_metadata(self, metadata: tuple[tuple[str, bytes], ...]) -> None:
        self.trailing = metadata


class Raising:
    def __init__(self, error: Exception) -> None:
        self.error = error

    @translating_errors
    async def Call(self, request: Any, context: Any) -> None:
        raise self.error


async def status_of(error: Exception, context: RecordingContext | None = None) -> StatusError:
    with pytest.raises(StatusError) as caught:
        await Raising(error).Call(None, context or RecordingContext())
    return caught.value


async def test_stale_versions_carry_their_reason_and_versions() -> None:
    context = RecordingContext()
    status = await status_of(StaleVersionError(7, 20, 10), context)
    assert status.code == grpc.StatusCode.ABORTED
    ((key, value),) = context.trailing
    assert key == STATUS_DETAILS_KEY
    details = status_pb2.Status.FromString(value)
    assert details.code == grpc.StatusCode.ABORTED.value[0]
    info = error_details_pb2.ErrorInfo()
    assert details.details[0].Unpack(info)
    assert (info.reason, info.domain) == ("COMPUTATION_TOKEN_VERSION_MISMATCH", ERROR_DOMAIN)
    assert dict(info.metadata) == {"computation_id": "7", "version": "20", "token_version": "10"}


async def test_errors_without_a_reason_carry_no_details() -> None:
    context = RecordingContext()
    status = await status_of(InvalidArgumentError("bad"), context)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT and context.trailing == ()


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConversionError("no stage"), grpc.StatusCode.INVALID_ARGUMENT),
        (
            OperationalError("SELECT 1", {}, Exception("connection refused")),
            grpc.StatusCode.UNAVAILABLE,
        ),
        (BlobStoreError("bucket unreachable"), grpc.StatusCode.UNAVAILABLE),
    ],
)
async def test_other_failures(error: Exception, code: grpc.StatusCode) -> None:
    assert (await status_of(error)).code == code


def test_stages_round_trip_and_reject_nonsense() -> None:
    assert stage_from_proto(stage_to_proto(3, 6)) == (3, 6)
    with pytest.raises(ConversionError):
        stage_from_proto(computation_protocols_pb2.ComputationStage())
    with pytest.raises(ConversionError):
        stage_from_proto(computation_protocols_pb2.ComputationStage(trus_tee=9))  # type: ignore[arg-type]


def test_tokens_convert_both_ways() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    token = ComputationToken(
        local_computation_id=5,
        global_computation_id="g",
        protocol=1,
        stage=7,
        attempt=2,
        version=99,
        computation_details=b"",
        stage_details=b"",
        lock_owner=None,
        lock_expiration_time=now,
        creation_time=now,
        update_time=now,
        blobs=(
            BlobRef(0, BlobDependency.INPUT, "g/in"),
            BlobRef(2, BlobDependency.PASS_THROUGH, "g/pass"),
            BlobRef(1, BlobDependency.OUTPUT, None),
        ),
    )
    message = token_to_proto(token)
    assert message.lock_owner == "" and message.lock_expiration_time.ToDatetime(tzinfo=UTC) == now
    assert output_paths(message) == ["", "g/pass"]  # by blob id, outputs and pass-throughs
    edit = edit_token_from_proto(message)
    assert (edit.local_computation_id, edit.protocol, edit.stage, edit.attempt, edit.version) == (
        5,
        1,
        7,
        2,
        99,
    )
    with pytest.raises(ConversionError):
        edit_token_from_proto(
            computation_token_pb2.ComputationToken(computation_stage=stage_to_proto(1, 1))
        )
