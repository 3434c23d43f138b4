"""Bad EDP and peer data through real mill stages (MillStageEnvironment, three duchies' mills,
payloads carried by the test): the stage that first reads the bad bytes fails the computation
here and at the Kingdom, with a message naming what was wrong, and no duchy reports a result.

Uploads are corrupted after the EDPs "fulfilled" them, in the duchy's blob store, which is what a
malicious or broken EDP (or a corrupted store) would leave there: fulfilment does not decode
sketches or shares, so the mill is where they are judged.
"""

from __future__ import annotations

import numpy as np
import pytest

from cmms.api.internal.duchy.v1 import computation_details_pb2 as details_pb2
from cmms.common.pki import PkiLayout
from cmms.crypto import group
from cmms.crypto.hybrid import HybridPrivateKey
from cmms.duchy.mill.kingdom import Failure
from cmms.duchy.mill.tokens import stage_of
from cmms.protocols.hmss.payloads import encode_aggregation_phase_input, encode_frequency_vector
from cmms.protocols.hmss.stages import Stage as HmssStage
from cmms.protocols.llv2.stages import Stage as Llv2Stage
from cmms.protocols.stages import ProtocolType, stage_graph
from cmms.storage import requisition_store
from cmms.testing.mill import MillStageEnvironment

from .conftest import OpenEnvironment
from .test_hmss_stages import GID as HMSS_GID
from .test_hmss_stages import HmssWorld, Q, hmss_world, initialized_everywhere
from .test_liquid_legions_stages import GID as LL_GID
from .test_liquid_legions_stages import LLV2, RING, RO_LLV2, LlWorld, ll_world, to_confirmation

FAILED = details_pb2.ComputationDetails.FAILED
SUCCEEDED = details_pb2.ComputationDetails.SUCCEEDED


def off_curve_point() -> bytes:
    """A well-formed compressed encoding (prefix 02) whose x coordinate is on no curve point."""
    for x in range(1, 1000):
        encoded = b"\x02" + x.to_bytes(32, "big")
        if not group.is_valid_point(encoded):
            return encoded
    raise AssertionError("no off-curve x below 1000")


async def rewrite_requisition(
    env: MillStageEnvironment, gid: str, rid: str, change: object
) -> None:
    store = requisition_store(env.store)
    data = await store.read_bytes(f"{gid}/{rid}")
    await store.write_bytes(f"{gid}/{rid}", change(data))  # type: ignore[operator]


def failures(world_envs: dict[str, MillStageEnvironment]) -> dict[str, list[Failure]]:
    return {d: [f for _, f in env.kingdom.failures] for d, env in world_envs.items()}


async def run_liquid_legions(world: LlWorld, corrupt: object) -> None:
    """Keys, EDP uploads (then `corrupt` req0 at worker1), confirmation, and every stage after."""
    for duchy in RING:
        await world.run(duchy)
    await to_confirmation(world)
    await rewrite_requisition(world.envs["worker1"], LL_GID, "req0", corrupt)
    for duchy in RING:
        await world.run(duchy)
    for worker in ("worker1", "worker2"):
        await world.envs[worker].move_to(await world.token(worker), Llv2Stage.SETUP_PHASE)
    await world.pump()


async def assert_failed_without_a_result(world: LlWorld, needle: str) -> str:
    """Exactly one duchy failed, naming `needle`; nothing was reported; nobody succeeded."""
    failed = {d: f for d, f in failures(world.envs).items() if f}
    assert len(failed) == 1, failed
    [(duchy, [failure])] = failed.items()
    assert needle in failure.error_message
    assert all(env.kingdom.results == [] for env in world.envs.values())
    token = await world.token(duchy)
    assert stage_graph(world.protocol).is_terminal(stage_of(token))
    assert token.computation_details.ending_state == FAILED
    for other in RING:
        assert (await world.token(other)).computation_details.ending_state != SUCCEEDED
    return duchy


@pytest.mark.parametrize("protocol", [LLV2, RO_LLV2], ids=["llv2", "reach-only"])
async def test_an_index_point_off_the_curve_fails_the_computation(
    protocol: ProtocolType,
    open_environment: OpenEnvironment,
    dev_pki: PkiLayout,
    consumer_key: HybridPrivateKey,
) -> None:
    world = await ll_world(
        protocol, open_environment, dev_pki, consumer_key, 3 if protocol is LLV2 else 1
    )
    bad = off_curve_point()

    def corrupt(data: bytes) -> bytes:
        # The second register's index ciphertext: its second point (the masked message).
        record = 198 if protocol is LLV2 else 66
        changed = bytearray(data)
        changed[record + 33 : record + 66] = bad
        return bytes(changed)

    await run_liquid_legions(world, corrupt)

    await assert_failed_without_a_result(world, "InvalidPointError")


@pytest.mark.parametrize("protocol", [LLV2, RO_LLV2], ids=["llv2", "reach-only"])
async def test_a_sketch_of_partial_registers_fails_where_it_was_uploaded(
    protocol: ProtocolType,
    open_environment: OpenEnvironment,
    dev_pki: PkiLayout,
    consumer_key: HybridPrivateKey,
) -> None:
    world = await ll_world(protocol, open_environment, dev_pki, consumer_key)

    await run_liquid_legions(world, lambda data: data[:-1])

    duchy = await assert_failed_without_a_result(world, "not a multiple")
    assert duchy == "worker1"


# ------------------------------------------------------------------------------ HMSS


async def worker1_shuffles(world: HmssWorld) -> None:
    """Both workers' setup phases, then worker1's shuffle phase, which reads its EDP shares."""
    await initialized_everywhere(world)
    w1, w2 = world.envs["worker1"], world.envs["worker2"]
    w1.peers.stages["worker2"] = HmssStage.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE
    await world.run("worker1")
    await w2.move_to(
        await world.token("worker2"),
        HmssStage.SETUP_PHASE,
        outputs=[w1.peers.delivered[0].payload],
    )
    w2.peers.stages["worker1"] = HmssStage.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO
    await world.run("worker2")
    await w1.move_to(
        await world.token("worker1"),
        HmssStage.SHUFFLE_PHASE,
        outputs=[w2.peers.delivered[-1].payload],
    )
    w1.peers.stages["aggregator"] = HmssStage.WAIT_ON_AGGREGATION_INPUT
    await world.run("worker1")


@pytest.mark.parametrize(
    ("share", "needle"),
    [
        pytest.param(np.arange(9) % 5, "different register counts", id="one register too many"),
        pytest.param(np.arange(7) % 5, "different register counts", id="one register too few"),
        pytest.param(np.array([0, 1, 2, Q, 0, 1, 0, 0]), "ring modulus", id="value at q"),
        pytest.param(np.array([0, 1, 2, 3, 0, 1, 2**32 - 1, 0]), "ring modulus", id="huge value"),
    ],
)
async def test_bad_edp_shares_fail_the_shuffle_and_send_nothing(
    open_environment: OpenEnvironment,
    dev_pki: PkiLayout,
    consumer_key: HybridPrivateKey,
    share: np.ndarray,
    needle: str,
) -> None:
    world = await hmss_world(open_environment, dev_pki, consumer_key)
    await rewrite_requisition(
        world.envs["worker1"], HMSS_GID, "reqA", lambda _: encode_frequency_vector(share)
    )

    await worker1_shuffles(world)

    w1 = world.envs["worker1"]
    [(_, failure)] = w1.kingdom.failures
    assert needle in failure.error_message
    assert all(d.peer != "aggregator" for d in w1.peers.delivered)
    assert (await world.token("worker1")).computation_details.ending_state == FAILED


@pytest.mark.parametrize(
    ("first_share", "needle"),
    [
        pytest.param(
            bytes(encode_aggregation_phase_input(np.array([0, 1, Q, 3, 0, 0, 0, 0]), 8)),
            "ring modulus",
            id="value at q",
        ),
        pytest.param(
            bytes(encode_aggregation_phase_input(np.zeros(8, dtype=np.uint32), 8))[:-5],
            "AggregationPhaseInput",
            id="truncated",
        ),
        pytest.param(
            bytes(encode_aggregation_phase_input(np.zeros(8, dtype=np.uint32), 9)),
            "fewer than its register count",
            id="count above the length",
        ),
    ],
)
async def test_bad_worker_shares_fail_the_aggregation_without_a_result(
    open_environment: OpenEnvironment,
    dev_pki: PkiLayout,
    consumer_key: HybridPrivateKey,
    first_share: bytes,
    needle: str,
) -> None:
    world = await hmss_world(open_environment, dev_pki, consumer_key)
    await world.run("aggregator")
    agg = world.envs["aggregator"]
    good = bytes(encode_aggregation_phase_input(np.zeros(8, dtype=np.uint32), 8))
    await agg.move_to(
        await world.token("aggregator"), HmssStage.AGGREGATION_PHASE, outputs=[first_share, good]
    )

    await world.run("aggregator")

    assert agg.kingdom.results == []
    [(_, failure)] = agg.kingdom.failures
    assert needle in failure.error_message
    assert (await world.token("aggregator")).computation_details.ending_state == FAILED
