"""TrusTee stages through the StageRunner, and the runner's handling of failures."""

from __future__ import annotations

import random

import grpc
import numpy as np
import pytest

from cmms.api.internal.duchy.v1 import computation_details_pb2 as details_pb2
from cmms.api.system.v1 import computation_pb2
from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout
from cmms.crypto.envelope import new_envelope
from cmms.crypto.hybrid import HybridPrivateKey
from cmms.duchy.mill.retry import EnqueueBackoff
from cmms.duchy.mill.stats import CRYPTO_WALL_CLOCK_MS, STAGE_WALL_CLOCK_MS
from cmms.duchy.mill.tokens import Token, lock_expiration, stage_of
from cmms.duchy.mill.trustee import TrusTeeHandlers
from cmms.protocols.stages import ProtocolType
from cmms.protocols.trustee.stages import Stage
from cmms.testing.fake_kms import FakeKms
from cmms.testing.mill import LOCK_DURATION, MillStageEnvironment

from .builders import open_result, requisition_key, requisitions, trustee_details
from .conftest import OpenEnvironment

TRUS_TEE = ProtocolType.TRUS_TEE
Details = details_pb2.RequisitionProtocolDetails
Participant = computation_pb2.ComputationParticipant
GID = "trustee-1"
VECTORS = (
    np.array([0, 1, 2, 0, 3, 1], dtype=np.uint8),
    np.array([1, 0, 2, 0, 0, 1], dtype=np.uint8),
)


async def at_computing(
    env: MillStageEnvironment,
    consumer_key: HybridPrivateKey,
    vectors: tuple[bytes, ...],
    envelope: tuple[FakeKms, str] | None = None,
) -> Token:
    ids = [f"req{i}" for i in range(len(vectors))]
    token = await env.create(GID, TRUS_TEE, trustee_details(consumer_key), requisitions(ids))
    for rid, data in zip(ids, vectors, strict=True):
        protocol = Details(trus_tee=Details.TrusTee(data_format=Details.TrusTee.FREQUENCY_VECTOR))
        if envelope is not None:
            kms, uri = envelope
            dek, wrapped = new_envelope(kms, uri)
            data = b"".join(dek.encrypt_chunks([data]))
            protocol.trus_tee.data_format = Details.TrusTee.ENCRYPTED_FREQUENCY_VECTOR
            protocol.trus_tee.encrypted_dek_ciphertext = wrapped
            protocol.trus_tee.kms_kek_uri = uri
        path = await env.store_requisition(GID, rid, data)
        token = await env.record_fulfillment(token, requisition_key(rid), path, protocol)
    token = await env.move_to(token, Stage.WAIT_TO_START)
    return await env.move_to(token, Stage.COMPUTING)


def duchy_certificate(pki: PkiLayout, duchy_id: str) -> bytes:
    return pki.party(Principal.duchy(duchy_id)).cs_cert.read_bytes()


async def test_initialized_publishes_params_and_waits(
    open_environment: OpenEnvironment, consumer_key: HybridPrivateKey
) -> None:
    env = await open_environment("aggregator")
    await env.create(GID, TRUS_TEE, trustee_details(consumer_key), requisitions(["r"]))
    runner = env.runner(TrusTeeHandlers(None).table())

    await runner.process(await env.claim(TRUS_TEE))

    params = env.participant(GID).requisition_params
    assert params.HasField("trus_tee")
    assert params.duchy_certificate == "duchies/aggregator/certificates/cs"
    token = await env.get(GID)
    assert stage_of(token) == Stage.WAIT_TO_START
    assert token.lock_owner == ""
    assert STAGE_WALL_CLOCK_MS in env.stats.names()


async def test_initialized_rerun_keeps_the_published_params(
    open_environment: OpenEnvironment, consumer_key: HybridPrivateKey
) -> None:
    env = await open_environment("aggregator")
    await env.create(GID, TRUS_TEE, trustee_details(consumer_key), requisitions(["r"]))
    name = f"computations/{GID}/participants/aggregator"
    await env.kingdom.set_requisition_params(
        name, computation_pb2.ComputationParticipant.RequisitionParams(trus_tee={}), ""
    )
    etag = env.kingdom.participant(name).etag

    await env.runner(TrusTeeHandlers(None).table()).process(await env.claim(TRUS_TEE))

    assert env.kingdom.participant(name).etag == etag
    assert stage_of(await env.get(GID)) == Stage.WAIT_TO_START


async def test_computing_reports_the_signed_encrypted_result(
    open_environment: OpenEnvironment, consumer_key: HybridPrivateKey, dev_pki: PkiLayout
) -> None:
    env = await open_environment("aggregator")
    await at_computing(env, consumer_key, tuple(v.tobytes() for v in VECTORS))

    await env.runner(TrusTeeHandlers(None).table()).process(await env.claim(TRUS_TEE))

    [request] = env.kingdom.results
    assert request.name == f"computations/{GID}"
    assert request.aggregator_certificate == "duchies/aggregator/certificates/cs"
    result = open_result(request, consumer_key, duchy_certificate(dev_pki, "aggregator"))
    # Combined (capped at 3): [1, 1, 3, 0, 3, 2] -> reach 5; frequencies 1: 2, 2: 1, 3: 2.
    assert result.reach.value == 5
    assert result.reach.methodology.HasField("deterministic_count_distinct")
    assert dict(result.frequency.relative_frequency_distribution) == pytest.approx(
        {1: 0.4, 2: 0.2, 3: 0.4}
    )
    token = await env.get(GID)
    assert stage_of(token) == Stage.COMPLETE
    assert token.computation_details.ending_state == details_pb2.ComputationDetails.SUCCEEDED
    assert {CRYPTO_WALL_CLOCK_MS, STAGE_WALL_CLOCK_MS} <= env.stats.names()


async def test_computing_unwraps_envelope_encrypted_vectors(
    open_environment: OpenEnvironment, consumer_key: HybridPrivateKey, dev_pki: PkiLayout
) -> None:
    env = await open_environment("aggregator")
    kms = FakeKms()
    uri = kms.create_key("edp-kek")
    await at_computing(env, consumer_key, tuple(v.tobytes() for v in VECTORS), (kms, uri))

    await env.runner(TrusTeeHandlers(kms).table()).process(await env.claim(TRUS_TEE))

    [request] = env.kingdom.results
    result = open_result(request, consumer_key, duchy_certificate(dev_pki, "aggregator"))
    assert result.reach.value == 5


async def test_transient_error_enqueues_with_a_backoff_delay(
    open_environment: OpenEnvironment, consumer_key: HybridPrivateKey
) -> None:
    env = await open_environment("aggregator")
    await at_computing(env, consumer_key, tuple(v.tobytes() for v in VECTORS))
    env.kingdom.faults.add("set_computation_result", grpc.StatusCode.UNAVAILABLE)
    backoff = EnqueueBackoff(random.Random(7))
    expected_delay = EnqueueBackoff(random.Random(7)).delay_seconds(1)
    claimed = await env.claim(TRUS_TEE)

    await env.runner(TrusTeeHandlers(None).table(), backoff=backoff).process(claimed)

    token = await env.get(GID)
    assert stage_of(token) == Stage.COMPUTING
    assert token.lock_owner == ""
    expires = lock_expiration(token)
    assert expires is not None
    assert (expires - env.clock()).total_seconds() == expected_delay
    assert 2 <= expected_delay <= 4
    [started, (parent, entry)] = env.kingdom.log_entries
    assert started[1].log_message == f"Computation {GID} at stage COMPUTING, attempt 1"
    assert not started[1].HasField("error_details")
    assert parent == f"computations/{GID}/participants/aggregator"
    assert entry.error_details.type == entry.ErrorDetails.TRANSIENT
    assert entry.stage_attempt.stage == Stage.COMPUTING
    assert entry.stage_attempt.attempt_number == 1
    assert env.kingdom.failures == []


async def test_retry_after_a_transient_error_completes(
    open_environment: OpenEnvironment, consumer_key: HybridPrivateKey
) -> None:
    env = await open_environment("aggregator")
    await at_computing(env, consumer_key, tuple(v.tobytes() for v in VECTORS))
    env.kingdom.faults.add("set_computation_result", grpc.StatusCode.DEADLINE_EXCEEDED)
    runner = env.runner(TrusTeeHandlers(None).table())
    await runner.process(await env.claim(TRUS_TEE))

    env.clock.advance(LOCK_DURATION)
    retried = await env.claim(TRUS_TEE)
    assert retried.attempt == 2
    await runner.process(retried)

    assert len(env.kingdom.results) == 1
    assert stage_of(await env.get(GID)) == Stage.COMPLETE


async def test_invalid_data_fails_the_computation_here_and_at_the_kingdom(
    open_environment: OpenEnvironment, consumer_key: HybridPrivateKey
) -> None:
    env = await open_environment("aggregator")
    # A register holding -1 as a signed byte: no EDP sends that.
    await at_computing(env, consumer_key, (VECTORS[0].tobytes(), b"\xff" * VECTORS[0].size))

    await env.runner(TrusTeeHandlers(None).table()).process(await env.claim(TRUS_TEE))

    assert env.kingdom.results == []
    [(name, failure)] = env.kingdom.failures
    assert name == f"computations/{GID}/participants/aggregator"
    assert "0..127" in failure.error_message
    assert failure.stage_attempt.stage_name == "COMPUTING"
    token = await env.get(GID)
    assert stage_of(token) == Stage.COMPLETE
    assert token.computation_details.ending_state == details_pb2.ComputationDetails.FAILED


async def test_a_participant_that_already_failed_is_not_failed_again(
    open_environment: OpenEnvironment, consumer_key: HybridPrivateKey
) -> None:
    env = await open_environment("aggregator")
    await at_computing(env, consumer_key, (b"\xff",))
    env.participant(GID).state = Participant.FAILED

    await env.runner(TrusTeeHandlers(None).table()).process(await env.claim(TRUS_TEE))

    assert env.kingdom.failures == []
    token = await env.get(GID)
    assert token.computation_details.ending_state == details_pb2.ComputationDetails.FAILED


async def test_kingdom_failed_precondition_counts_as_already_failed(
    open_environment: OpenEnvironment, consumer_key: HybridPrivateKey
) -> None:
    env = await open_environment("aggregator")
    await at_computing(env, consumer_key, (b"\xff",))
    env.kingdom.faults.add("fail_participant", grpc.StatusCode.FAILED_PRECONDITION)

    await env.runner(TrusTeeHandlers(None).table()).process(await env.claim(TRUS_TEE))

    token = await env.get(GID)
    assert token.computation_details.ending_state == details_pb2.ComputationDetails.FAILED


async def test_kingdom_participant_updates_retry_transient_errors_with_backoff(
    open_environment: OpenEnvironment, consumer_key: HybridPrivateKey
) -> None:
    env = await open_environment("aggregator")
    await env.create(GID, TRUS_TEE, trustee_details(consumer_key), requisitions(["r"]))
    env.kingdom.faults.add("get_participant", grpc.StatusCode.UNAVAILABLE)
    env.kingdom.faults.add("set_requisition_params", grpc.StatusCode.ABORTED)

    await env.runner(TrusTeeHandlers(None).table()).process(await env.claim(TRUS_TEE))

    assert len(env.sleep.delays) == 2
    assert env.participant(GID).HasField("requisition_params")
    assert stage_of(await env.get(GID)) == Stage.WAIT_TO_START


async def test_lost_lock_stops_without_writing(
    open_environment: OpenEnvironment, consumer_key: HybridPrivateKey
) -> None:
    env = await open_environment("aggregator")
    await at_computing(env, consumer_key, tuple(v.tobytes() for v in VECTORS))
    claimed = await env.claim(TRUS_TEE)
    env.clock.advance(LOCK_DURATION)

    await env.runner(TrusTeeHandlers(None).table()).process(claimed)

    assert env.computations.writes == []
    assert env.kingdom.results == [] and env.kingdom.failures == []
    token = await env.get(GID)
    assert stage_of(token) == Stage.COMPUTING
    assert token.version == claimed.version


async def test_lock_taken_over_by_another_mill_is_left_alone(
    open_environment: OpenEnvironment, consumer_key: HybridPrivateKey
) -> None:
    env = await open_environment("aggregator")
    await at_computing(env, consumer_key, tuple(v.tobytes() for v in VECTORS))
    claimed = await env.claim(TRUS_TEE)
    env.clock.advance(LOCK_DURATION)
    # Another mill reclaims the expired lock before this one reports: our token is now stale.
    await env.claim(TRUS_TEE, owner="another-mill")
    env.clock.advance(LOCK_DURATION / 10)
    env.kingdom.faults.add("set_computation_result", grpc.StatusCode.ABORTED)
    # Our own clock has not noticed the expiry (clock skew): only the server knows.
    runner = env.runner(TrusTeeHandlers(None).table())
    claimed.lock_expiration_time.FromDatetime(env.clock() + LOCK_DURATION)

    await runner.process(claimed)

    token = await env.get(GID)
    assert token.lock_owner == "another-mill"
    assert "enqueue" not in env.computations.calls
    assert "finish" not in env.computations.calls


async def test_too_many_attempts_fail_the_computation(
    open_environment: OpenEnvironment, consumer_key: HybridPrivateKey
) -> None:
    env = await open_environment("aggregator")
    await at_computing(env, consumer_key, tuple(v.tobytes() for v in VECTORS))
    claimed = await env.claim(TRUS_TEE)

    await env.runner(TrusTeeHandlers(None).table(), maximum_attempts=0).process(claimed)

    [(_, failure)] = env.kingdom.failures
    assert "too many failed attempts" in failure.error_message
    assert env.kingdom.results == []


async def test_a_claimed_computation_whose_version_moved_is_skipped(
    open_environment: OpenEnvironment, consumer_key: HybridPrivateKey
) -> None:
    env = await open_environment("aggregator")
    await at_computing(env, consumer_key, tuple(v.tobytes() for v in VECTORS))
    claimed = await env.claim(TRUS_TEE)
    runner = env.runner(TrusTeeHandlers(None).table())

    assert not await runner.process_claimed(GID, claimed.version - 1)
    assert env.kingdom.results == []
    [(_, entry)] = env.kingdom.log_entries
    assert "version" in entry.log_message

    assert await runner.process_claimed(GID, claimed.version)
    assert len(env.kingdom.results) == 1


async def test_claim_and_process_reports_when_the_queue_is_empty(
    open_environment: OpenEnvironment, consumer_key: HybridPrivateKey
) -> None:
    env = await open_environment("aggregator")
    runner = env.runner(TrusTeeHandlers(None).table())
    assert not await runner.claim_and_process(TRUS_TEE)
    await env.create(GID, TRUS_TEE, trustee_details(consumer_key), requisitions(["r"]))
    assert await runner.claim_and_process(TRUS_TEE)
    assert not await runner.claim_and_process(TRUS_TEE)
