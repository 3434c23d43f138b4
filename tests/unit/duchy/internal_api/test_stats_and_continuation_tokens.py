"""ComputationStats and ContinuationTokens over real mTLS."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from cmms.api.internal.duchy.v1 import (
    computation_stats_service_pb2,
    computation_stats_service_pb2_grpc,
    computations_service_pb2,
    continuation_tokens_service_pb2,
    continuation_tokens_service_pb2_grpc,
)
from cmms.api.system.v1 import computations_pb2
from cmms.duchy.deployable import DuchyDeployable
from cmms.duchy.internal_api.continuation_tokens import (
    decode_continuation_token,
    encode_continuation_token,
)
from cmms.duchy.internal_api.convert import stage_to_proto
from cmms.duchy.internal_api.errors import error_reason
from cmms.testing.duchy_fixtures import ChannelOpener
from cmms.testing.duchy_stack import ComputationDriver, llv2_details

stats_pb = computation_stats_service_pb2
tokens_pb = continuation_tokens_service_pb2


async def failure(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


@pytest.fixture
def stats_stub(
    internal_api: DuchyDeployable, channel_to: ChannelOpener
) -> computation_stats_service_pb2_grpc.ComputationStatsStub:
    return computation_stats_service_pb2_grpc.ComputationStatsStub(
        channel_to(internal_api.ports.grpc)
    )


@pytest.fixture
def tokens_stub(
    internal_api: DuchyDeployable, channel_to: ChannelOpener
) -> continuation_tokens_service_pb2_grpc.ContinuationTokensStub:
    return continuation_tokens_service_pb2_grpc.ContinuationTokensStub(
        channel_to(internal_api.ports.grpc)
    )


async def test_stats_attach_to_a_claimed_attempt(
    driver: ComputationDriver,
    stats_stub: computation_stats_service_pb2_grpc.ComputationStatsStub,
) -> None:
    await driver.create("c1", 1, llv2_details(1, []))
    token = (
        await driver.stub.ClaimWork(
            computations_service_pb2.ClaimWorkRequest(computation_type=1, owner="mill")
        )
    ).token

    def stat(attempt: int, name: str = "crypto_cpu_duration_ms") -> object:
        return stats_stub.CreateComputationStat(
            stats_pb.CreateComputationStatRequest(
                local_computation_id=token.local_computation_id,
                computation_stage=stage_to_proto(1, 1),
                attempt=attempt,
                metric_name=name,
                metric_value=42,
            )
        )

    await stat(1)  # type: ignore[misc]
    assert (await failure(stat(1))).code() == grpc.StatusCode.ALREADY_EXISTS
    assert (await failure(stat(2))).code() == grpc.StatusCode.NOT_FOUND
    assert (await failure(stat(1, name=""))).code() == grpc.StatusCode.INVALID_ARGUMENT
    no_stage = await failure(
        stats_stub.CreateComputationStat(
            stats_pb.CreateComputationStatRequest(
                local_computation_id=token.local_computation_id, metric_name="x"
            )
        )
    )
    assert no_stage.code() == grpc.StatusCode.INVALID_ARGUMENT


def continuation_token(seconds: int, padded: bool = False) -> str:
    message = computations_pb2.StreamActiveComputationsContinuationToken(
        last_seen_external_computation_id=7
    )
    message.last_seen_update_time.FromDatetime(
        datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    )
    if padded:
        return base64.urlsafe_b64encode(message.SerializeToString()).decode()
    return encode_continuation_token(message)


def test_tokens_round_trip_with_and_without_padding() -> None:
    unpadded, padded = continuation_token(5), continuation_token(5, padded=True)
    assert "=" not in unpadded and padded.endswith("=")
    assert decode_continuation_token(unpadded) == decode_continuation_token(padded)
    assert decode_continuation_token(padded).last_seen_external_computation_id == 7


async def test_continuation_tokens_only_move_forward(
    tokens_stub: continuation_tokens_service_pb2_grpc.ContinuationTokensStub,
) -> None:
    empty = await tokens_stub.GetContinuationToken(tokens_pb.GetContinuationTokenRequest())
    assert empty.token == ""

    await tokens_stub.SetContinuationToken(
        tokens_pb.SetContinuationTokenRequest(token=continuation_token(10, padded=True))
    )
    same_time = continuation_token(10)
    await tokens_stub.SetContinuationToken(tokens_pb.SetContinuationTokenRequest(token=same_time))
    stored = await tokens_stub.GetContinuationToken(tokens_pb.GetContinuationTokenRequest())
    assert stored.token == same_time

    older = await failure(
        tokens_stub.SetContinuationToken(
            tokens_pb.SetContinuationTokenRequest(token=continuation_token(9))
        )
    )
    assert older.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(older) == "CONTINUATION_TOKEN_INVALID"
    after = await tokens_stub.GetContinuationToken(tokens_pb.GetContinuationTokenRequest())
    assert after.token == same_time


@pytest.mark.parametrize("malformed", ["not base64!", "A", "_w"])
async def test_malformed_continuation_tokens_are_invalid_arguments(
    tokens_stub: continuation_tokens_service_pb2_grpc.ContinuationTokensStub, malformed: str
) -> None:
    error = await failure(
        tokens_stub.SetContinuationToken(tokens_pb.SetContinuationTokenRequest(token=malformed))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(error) == "CONTINUATION_TOKEN_MALFORMED"
