"""Per-state handling of one streamed computation, against the in-memory internal API."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest

from cmms.api.internal.duchy.protocol.v1 import hmss_pb2, llv2_pb2, trustee_pb2
from cmms.api.internal.duchy.v1 import computation_details_pb2
from cmms.api.public.v1 import crypto_pb2
from cmms.api.system.v1 import computation_pb2
from cmms.crypto.keystore import aead_from_cleartext_keyset, generate_kek_keyset
from cmms.duchy.herald.confirmation import Confirmer
from cmms.duchy.herald.creation import ComputationCreator
from cmms.duchy.herald.processor import ComputationProcessor, Identity, Outcome
from cmms.duchy.herald.retry import Backoff, Pacer
from cmms.duchy.herald.ring_order import ring_sort_key
from cmms.duchy.herald.start import ComputationStarter
from cmms.duchy.herald.starters.common import DuchyContext, Starter
from cmms.duchy.herald.starters.hmss import HmssStarter
from cmms.duchy.herald.starters.liquid_legions import (
    LiquidLegionsV2Starter,
    ReachOnlyLiquidLegionsV2Starter,
)
from cmms.duchy.herald.starters.trustee import TrusTeeStarter
from cmms.duchy.private_keys import PrivateKeyStore
from cmms.storage import open_blob_store
from cmms.testing.herald import (
    AGGREGATOR,
    WORKER1,
    WORKER2,
    ComputationBuilder,
    FakeKingdom,
    FakeLocalComputations,
    RecordingSleep,
    el_gamal_key,
    setup_config,
)

State = computation_pb2.Computation.State
Ll = llv2_pb2.LiquidLegionsV2.Stage
Hmss = hmss_pb2.HonestMajorityShareShuffle.Stage
TrusTee = trustee_pb2.TrusTee.Stage
Reason = computation_details_pb2.ComputationDetails.CompletedReason
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GID = ComputationBuilder().computation_id


class Duchy:
    """One duchy's processor over fakes."""

    def __init__(
        self, duchy_id: str, *, max_attempts: int = 3, deletable: frozenset[int] = frozenset()
    ) -> None:
        self.kingdom = FakeKingdom()
        self.local = FakeLocalComputations()
        self.sleep = RecordingSleep()
        context = DuchyContext(duchy_id, setup_config())
        keys = PrivateKeyStore(
            open_blob_store("memory://"), aead_from_cleartext_keyset(generate_kek_keyset())
        )
        starters: dict[int, Starter] = {
            1: LiquidLegionsV2Starter(context),
            2: ReachOnlyLiquidLegionsV2Starter(context),
            3: HmssStarter(context, keys.store),
            4: TrusTeeStarter(context),
        }
        self.processor = ComputationProcessor(
            Identity(duchy_id, f"{duchy_id}-herald-0"),
            self.kingdom,
            self.local,
            ComputationCreator(self.local, starters),
            Confirmer(self.local, setup_config()),
            ComputationStarter(self.local),
            pacer=Pacer(Backoff(max_attempts=max_attempts), self.sleep, lambda: 0.5),
            deletable_states=deletable,
            clock=lambda: NOW,
        )

    async def process(self, computation: computation_pb2.Computation) -> Outcome:
        return await self.processor.process(computation)


# ----------------------------------------------------------------------------- creation


@pytest.mark.parametrize(
    ("protocol", "duchy_id", "computation_type", "stage"),
    [
        ("liquid_legions_v2", WORKER1, 1, Ll.INITIALIZATION_PHASE),
        ("reach_only_liquid_legions_v2", AGGREGATOR, 2, Ll.INITIALIZATION_PHASE),
        ("honest_majority_share_shuffle", WORKER2, 3, Hmss.INITIALIZED),
        ("trus_tee", AGGREGATOR, 4, TrusTee.INITIALIZED),
    ],
)
async def test_pending_requisition_params_creates_the_local_computation(
    protocol: str, duchy_id: str, computation_type: int, stage: int
) -> None:
    duchy = Duchy(duchy_id)
    builder = ComputationBuilder(reach_only=protocol == "reach_only_liquid_legions_v2")
    assert await duchy.process(builder.build(protocol)) is Outcome.DONE
    (created,) = duchy.local.created
    assert created.computation_type == computation_type
    assert duchy.local.stage(GID) == stage
    assert duchy.kingdom.failed == []


async def test_creation_replay_neither_fails_nor_creates_again() -> None:
    duchy = Duchy(WORKER1)
    computation = ComputationBuilder().build("honest_majority_share_shuffle")
    await duchy.process(computation)
    key_pair = duchy.local.stored(
        GID
    ).computation_details.honest_majority_share_shuffle.encryption_key_pair  # type: ignore[union-attr]
    assert await duchy.process(computation) is Outcome.DONE
    assert len(duchy.local.created) == 1
    # The first key pair stays: no second one was made.
    stored = duchy.local.stored(GID)
    assert stored is not None
    assert stored.computation_details.honest_majority_share_shuffle.encryption_key_pair == key_pair


async def test_parameter_check_failure_fails_the_participant_with_the_reason() -> None:
    duchy = Duchy(WORKER1)
    computation = ComputationBuilder(delta=0.0).build("liquid_legions_v2")
    assert await duchy.process(computation) is Outcome.FAILED

    ((name, failure),) = duchy.kingdom.failed
    assert name == f"{computation.name}/participants/{WORKER1}"
    assert failure.participant_child_reference_id == "worker1-herald-0"
    assert failure.error_message.startswith("Herald failed after 1 attempts. ")
    assert "delta" in failure.error_message
    assert failure.error_time.ToDatetime(tzinfo=UTC) == NOW
    assert duchy.local.created == []  # permanent: not retried
    assert duchy.sleep.delays == []


async def test_transient_errors_are_retried_with_backoff() -> None:
    duchy = Duchy(WORKER1, max_attempts=3)
    duchy.local.faults.add("CreateComputation", grpc.StatusCode.UNAVAILABLE, times=2)
    assert await duchy.process(ComputationBuilder().build("liquid_legions_v2")) is Outcome.DONE
    assert duchy.local.stage(GID) == Ll.INITIALIZATION_PHASE
    assert duchy.sleep.delays == [0.5, 0.75]  # 0.5 s, then x1.5 (jitter pinned to its middle)
    assert duchy.kingdom.failed == []


async def test_exhausted_retries_fail_the_computation_at_the_kingdom_and_locally() -> None:
    duchy = Duchy(WORKER1, max_attempts=3)
    builder = ComputationBuilder()
    await duchy.process(builder.build("liquid_legions_v2"))
    await duchy.local.force_advance(GID, Ll.WAIT_REQUISITIONS_AND_KEY_SET)
    duchy.local.faults.add("UpdateComputationDetails", grpc.StatusCode.DEADLINE_EXCEEDED, times=3)

    confirming = builder.with_keys(builder.build("liquid_legions_v2"), "liquid_legions_v2")
    assert await duchy.process(confirming) is Outcome.FAILED

    ((_, failure),) = duchy.kingdom.failed
    assert failure.error_message.startswith("Herald failed after 3 attempts. DEADLINE_EXCEEDED")
    assert duchy.local.stage(GID) == Ll.COMPLETE
    stored = duchy.local.stored(GID)
    assert stored is not None and stored.computation_details.ending_state == Reason.FAILED


async def test_an_unreachable_kingdom_does_not_stop_the_local_failure() -> None:
    duchy = Duchy(WORKER1, max_attempts=2)
    duchy.kingdom.faults.add("FailComputationParticipant", grpc.StatusCode.UNAVAILABLE, times=2)
    outcome = await duchy.process(ComputationBuilder(delta=0).build("liquid_legions_v2"))
    assert outcome is Outcome.FAILED
    assert duchy.kingdom.failed == []
    assert duchy.kingdom.faults.calls["FailComputationParticipant"] == 2


# ----------------------------------------------------------------------------- confirmation


@pytest.mark.parametrize("protocol", ["liquid_legions_v2", "reach_only_liquid_legions_v2"])
async def test_confirmation_records_the_ring_keys_and_nonces_then_queues_confirmation(
    protocol: str,
) -> None:
    duchy = Duchy(WORKER2)
    builder = ComputationBuilder(reach_only=True)
    created = builder.build(protocol)
    await duchy.process(created)
    await duchy.local.force_advance(GID, Ll.WAIT_REQUISITIONS_AND_KEY_SET)

    assert await duchy.process(builder.with_keys(created, protocol)) is Outcome.DONE

    token = duchy.local.stored(GID)
    assert token is not None
    assert duchy.local.stage(GID) == Ll.CONFIRMATION_PHASE
    ring = getattr(token.computation_details, protocol).participants
    workers = sorted(
        (WORKER1, WORKER2),
        key=lambda d: ring_sort_key(el_gamal_key(d).SerializeToString(), GID),
    )
    assert [p.duchy_id for p in ring] == [*workers, AGGREGATOR]
    for participant in ring:
        assert participant.public_key == el_gamal_key(participant.duchy_id)
        assert (
            participant.serialized_public_key
            == el_gamal_key(participant.duchy_id).SerializeToString()
        )
        assert participant.public_key_signature == f"signature of {participant.duchy_id}".encode()
        assert participant.public_key_signature_algorithm_oid == "1.2.840.10045.4.3.2"
        assert participant.duchy_certificate_der == f"DER of {participant.duchy_id}".encode()
    assert [r.details.nonce for r in token.requisitions] == [11, 22]
    assert [r.details.external_fulfilling_duchy_id for r in token.requisitions] == [WORKER1] * 2
    # The parameters set at creation are kept.
    assert getattr(token.computation_details, protocol).parameters.requisition_count == 2


async def test_confirmation_keeps_requisition_facts_recorded_at_fulfilment() -> None:
    duchy = Duchy(WORKER1)
    builder = ComputationBuilder()
    created = builder.build("liquid_legions_v2")
    await duchy.process(created)
    token = duchy.local.stored(GID)
    assert token is not None
    fulfilled = computation_details_pb2.RequisitionEntry(
        key=token.requisitions[0].external_key,
        value=computation_details_pb2.RequisitionDetails(
            nonce_hash=token.requisitions[0].details.nonce_hash, public_api_version="v1"
        ),
    )
    await duchy.local.update_details(token, token.computation_details, [fulfilled])
    await duchy.local.force_advance(GID, Ll.WAIT_REQUISITIONS_AND_KEY_SET)

    await duchy.process(builder.with_keys(created, "liquid_legions_v2"))

    stored = duchy.local.stored(GID)
    assert stored is not None
    assert stored.requisitions[0].details.public_api_version == "v1"
    assert stored.requisitions[0].details.nonce == 11


async def test_confirmation_replay_does_nothing() -> None:
    duchy = Duchy(WORKER1)
    builder = ComputationBuilder()
    created = builder.build("liquid_legions_v2")
    await duchy.process(created)
    await duchy.local.force_advance(GID, Ll.WAIT_REQUISITIONS_AND_KEY_SET)
    confirming = builder.with_keys(created, "liquid_legions_v2")
    await duchy.process(confirming)
    version = duchy.local.stored(GID).version  # type: ignore[union-attr]
    assert await duchy.process(confirming) is Outcome.DONE
    assert duchy.local.stored(GID).version == version  # type: ignore[union-attr]


async def test_confirmation_catches_up_a_mill_that_stopped_after_publishing_its_key() -> None:
    duchy = Duchy(WORKER1)
    builder = ComputationBuilder()
    created = builder.build("liquid_legions_v2")
    await duchy.process(created)
    token = duchy.local.stored(GID)
    assert token is not None
    details = computation_details_pb2.ComputationDetails()
    details.CopyFrom(token.computation_details)
    details.liquid_legions_v2.local_el_gamal_key.public_key.CopyFrom(el_gamal_key(WORKER1))
    await duchy.local.force_details(GID, details)

    assert await duchy.process(builder.with_keys(created, "liquid_legions_v2")) is Outcome.DONE
    assert duchy.local.stage(GID) == Ll.CONFIRMATION_PHASE


async def test_confirmation_while_still_initializing_is_retried_then_failed() -> None:
    duchy = Duchy(WORKER1, max_attempts=3)
    builder = ComputationBuilder()
    created = builder.build("liquid_legions_v2")
    await duchy.process(created)
    assert await duchy.process(builder.with_keys(created, "liquid_legions_v2")) is Outcome.FAILED
    assert len(duchy.sleep.delays) == 2
    ((_, failure),) = duchy.kingdom.failed
    assert "still initializing" in failure.error_message


# ----------------------------------------------------------------------------- start


async def _llv2_at(
    duchy: Duchy, stages: list[int], computation: computation_pb2.Computation
) -> None:
    await duchy.process(computation)
    for stage in stages:
        await duchy.local.force_advance(GID, stage)


async def test_start_moves_an_llv2_worker_to_setup() -> None:
    duchy = Duchy(WORKER1)
    computation = ComputationBuilder().build("liquid_legions_v2")
    path = [Ll.WAIT_REQUISITIONS_AND_KEY_SET, Ll.CONFIRMATION_PHASE, Ll.WAIT_TO_START]
    await _llv2_at(duchy, path, computation)
    running = ComputationBuilder.in_state(computation, State.PENDING_COMPUTATION)
    assert await duchy.process(running) is Outcome.DONE
    assert duchy.local.stage(GID) == Ll.SETUP_PHASE
    token = duchy.local.stored(GID)
    assert token is not None and len(token.blobs) == 1  # SETUP_PHASE's output slot
    # Replayed: nothing more.
    assert await duchy.process(running) is Outcome.DONE
    assert duchy.local.stage(GID) == Ll.SETUP_PHASE


async def test_start_leaves_the_llv2_aggregator_to_its_peers() -> None:
    duchy = Duchy(AGGREGATOR)
    computation = ComputationBuilder().build("liquid_legions_v2")
    await _llv2_at(duchy, [Ll.WAIT_REQUISITIONS_AND_KEY_SET, Ll.CONFIRMATION_PHASE], computation)
    await duchy.local.force_advance(GID, Ll.WAIT_SETUP_PHASE_INPUTS, outputs=2)
    running = ComputationBuilder.in_state(computation, State.PENDING_COMPUTATION)
    assert await duchy.process(running) is Outcome.DONE
    assert duchy.local.stage(GID) == Ll.WAIT_SETUP_PHASE_INPUTS


async def test_start_catches_up_a_confirmed_worker_only_once_it_has_its_combined_key() -> None:
    duchy = Duchy(WORKER2, max_attempts=2)
    computation = ComputationBuilder(reach_only=True).build("reach_only_liquid_legions_v2")
    await _llv2_at(duchy, [Ll.WAIT_REQUISITIONS_AND_KEY_SET, Ll.CONFIRMATION_PHASE], computation)
    running = ComputationBuilder.in_state(computation, State.PENDING_COMPUTATION)
    token = duchy.local.stored(GID)
    assert token is not None
    details = computation_details_pb2.ComputationDetails()
    details.CopyFrom(token.computation_details)
    details.reach_only_liquid_legions_v2.combined_public_key.CopyFrom(
        crypto_pb2.ElGamalPublicKey(element=b"sum")
    )
    await duchy.local.force_details(GID, details)

    assert await duchy.process(running) is Outcome.DONE
    assert duchy.local.stage(GID) == Ll.SETUP_PHASE


async def test_start_of_a_worker_without_combined_key_is_retried_then_failed() -> None:
    duchy = Duchy(WORKER1, max_attempts=2)
    computation = ComputationBuilder().build("liquid_legions_v2")
    await _llv2_at(duchy, [Ll.WAIT_REQUISITIONS_AND_KEY_SET, Ll.CONFIRMATION_PHASE], computation)
    running = ComputationBuilder.in_state(computation, State.PENDING_COMPUTATION)
    assert await duchy.process(running) is Outcome.FAILED
    assert duchy.local.stage(GID) == Ll.COMPLETE
    assert "combined key" in duchy.kingdom.failed[0][1].error_message


@pytest.mark.parametrize(
    ("duchy_id", "mill_stage", "expected"),
    [
        (WORKER1, Hmss.WAIT_TO_START, Hmss.SETUP_PHASE),
        (WORKER1, None, Hmss.SETUP_PHASE),  # interrupted run: still INITIALIZED, has its key
        (WORKER2, Hmss.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE, Hmss.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE),
        (AGGREGATOR, Hmss.WAIT_ON_AGGREGATION_INPUT, Hmss.WAIT_ON_AGGREGATION_INPUT),
    ],
)
async def test_start_hmss_moves_only_the_first_non_aggregator(
    duchy_id: str, mill_stage: int | None, expected: int
) -> None:
    duchy = Duchy(duchy_id)
    computation = ComputationBuilder().build("honest_majority_share_shuffle")
    await duchy.process(computation)
    if mill_stage is not None:
        outputs = 2 if mill_stage == Hmss.WAIT_ON_AGGREGATION_INPUT else 0
        await duchy.local.force_advance(GID, mill_stage, outputs=outputs)
    running = ComputationBuilder.in_state(computation, State.PENDING_COMPUTATION)
    assert await duchy.process(running) is Outcome.DONE
    assert duchy.local.stage(GID) == expected


@pytest.mark.parametrize("mill_stage", [TrusTee.WAIT_TO_START, None])
async def test_start_trustee_computes(mill_stage: int | None) -> None:
    duchy = Duchy(AGGREGATOR)
    computation = ComputationBuilder().build("trus_tee")
    await duchy.process(computation)
    if mill_stage is not None:
        await duchy.local.force_advance(GID, mill_stage)
    running = ComputationBuilder.in_state(computation, State.PENDING_COMPUTATION)
    assert await duchy.process(running) is Outcome.DONE
    assert duchy.local.stage(GID) == TrusTee.COMPUTING


# ----------------------------------------------------------------------------- end states


@pytest.mark.parametrize(
    ("state", "reason"), [(State.FAILED, Reason.FAILED), (State.CANCELLED, Reason.CANCELED)]
)
async def test_failed_or_cancelled_finishes_the_local_computation(state: int, reason: int) -> None:
    duchy = Duchy(WORKER1)
    computation = ComputationBuilder().build("liquid_legions_v2")
    await duchy.process(computation)
    assert await duchy.process(ComputationBuilder.in_state(computation, state)) is Outcome.DONE
    token = duchy.local.stored(GID)
    assert token is not None
    assert duchy.local.stage(GID) == Ll.COMPLETE
    assert token.computation_details.ending_state == reason
    assert duchy.kingdom.failed == []  # the Kingdom already knows
    # Again: already ended, nothing changes.
    version = token.version
    await duchy.process(ComputationBuilder.in_state(computation, state))
    assert duchy.local.stored(GID).version == version  # type: ignore[union-attr]


async def test_an_unknown_computation_ending_is_ignored() -> None:
    duchy = Duchy(WORKER1)
    computation = ComputationBuilder().build("liquid_legions_v2", State.CANCELLED)
    assert await duchy.process(computation) is Outcome.DONE
    assert duchy.local.created == []


async def test_succeeded_does_nothing_unless_configured_deletable() -> None:
    computation = ComputationBuilder().build("trus_tee")
    succeeded = ComputationBuilder.in_state(computation, State.SUCCEEDED)

    keeping = Duchy(AGGREGATOR)
    await keeping.process(computation)
    assert await keeping.process(succeeded) is Outcome.DONE
    assert keeping.local.stored(GID) is not None

    deleting = Duchy(AGGREGATOR, deletable=frozenset({State.SUCCEEDED}))
    await deleting.process(computation)
    assert await deleting.process(succeeded) is Outcome.DONE
    assert deleting.local.stored(GID) is None
    assert len(deleting.local.deleted) == 1


async def test_states_without_action_are_ignored() -> None:
    duchy = Duchy(WORKER1)
    computation = ComputationBuilder().build(
        "liquid_legions_v2", State.PENDING_REQUISITION_FULFILLMENT
    )
    assert await duchy.process(computation) is Outcome.IGNORED


def test_only_terminal_states_can_be_deletable() -> None:
    with pytest.raises(ValueError, match="terminal"):
        Duchy(WORKER1, deletable=frozenset({State.PENDING_COMPUTATION}))
