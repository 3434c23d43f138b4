"""A stage input cut half-way through its write: the receiving duchy's ComputationControl server
is killed (SIGKILL) while a large AdvanceComputation body streams into its blob store. The partial
blob never becomes visible (no blob under the stage's keys, nothing recorded, the stage where it
was); once the server is back the real input arrives whole and the measurement succeeds.

LLv2: the aggregator sends EXECUTION_PHASE_ONE's input to the first worker of the ring. While the
aggregator's mills are frozen (SIGSTOP of its mill scheduler's process group, so the real input
cannot arrive meanwhile), the test streams a body of many chunks to that worker with the
aggregator's certificate, waits until the write is visibly under way (the hidden partial file has
grown by what was sent), and kills the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from cmms.api.system.v1 import computation_control_pb2, computation_control_pb2_grpc
from cmms.common.grpc import ChannelSettings, ClientTls, secure_channel
from cmms.common.identity import Principal
from cmms.deploy.local.routing import LocalProtocol
from cmms.deploy.local.system import LocalSystem
from cmms.duchy.mill.peers import input_header
from cmms.duchy.mill.tokens import output_slots, protocol_details, stage_name
from cmms.protocols.llv2.actions import action_for
from cmms.protocols.llv2.stages import Role, Stage
from cmms.protocols.stages import ProtocolType
from cmms.storage.filesystem import PARTIAL_SUFFIX
from cmms.testing.local_system import (
    DuchyComputations,
    check_result,
    eventually,
    start_measurement,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(480)]

StartSystem = Callable[..., Awaitable[LocalSystem]]
LLV2 = ProtocolType.LIQUID_LEGIONS_V2
AGGREGATOR = "aggregator"
CHUNK = 1024 * 1024
# What is sent before the cut: far more than the real input (well under a MiB here).
CHUNKS_BEFORE_CUT = 16
Request = computation_control_pb2.AdvanceComputationRequest


def files_of(directory: Path) -> tuple[list[Path], list[Path]]:
    """(visible blobs, hidden partial files) in a stage's blob directory."""
    if not directory.is_dir():
        return [], []
    files = [p for p in directory.iterdir() if p.is_file()]
    return (
        [p for p in files if not p.name.endswith(PARTIAL_SUFFIX)],
        [p for p in files if p.name.endswith(PARTIAL_SUFFIX)],
    )


async def test_a_write_cut_half_way_never_becomes_a_visible_input(
    start_system: StartSystem,
) -> None:
    system = await start_system()
    aggregator = DuchyComputations(system, AGGREGATOR)
    scheduler_group = system.supervisor.pid(f"{AGGREGATOR}-mill-scheduler")
    frozen = False
    measuring = start_measurement(system, LocalProtocol.LLV2)
    sending: asyncio.Future[object] | None = None
    channel: grpc.aio.Channel | None = None
    receiver: DuchyComputations | None = None
    try:

        async def waiting_for_setup_inputs() -> str | None:
            ids = await aggregator.global_ids(LLV2)
            token = await aggregator.token(ids[0]) if ids else None
            if token is None or stage_name(token) != "WAIT_SETUP_PHASE_INPUTS":
                return None
            return token.global_computation_id

        gid = await eventually(
            waiting_for_setup_inputs, timeout=240, what="the aggregator waiting for setup inputs"
        )
        os.killpg(scheduler_group, signal.SIGSTOP)
        frozen = True
        token = await aggregator.token(gid)
        assert token is not None
        # The aggregator is last in the ring: its next duchy is the first participant.
        worker = protocol_details(token).participants[0].duchy_id
        receiver = DuchyComputations(system, worker)
        action = action_for(Role.AGGREGATOR, Stage.SETUP_PHASE)
        assert action.description is not None and action.expected_peer_stage is not None
        wait_stage = Stage(action.expected_peer_stage).name

        async def receiver_waiting() -> bool | None:
            assert receiver is not None
            token = await receiver.token(gid)
            return (token is not None and stage_name(token) == wait_stage) or None

        await eventually(receiver_waiting, timeout=120, what=f"{worker} in {wait_stage}")

        endpoints = system.endpoints
        target = endpoints.duchies[worker].computation_control
        assert target is not None
        channel = secure_channel(
            target,
            ClientTls.from_pki(endpoints.pki, Principal.duchy(AGGREGATOR)),
            ChannelSettings(target_name_override=endpoints.tls_server_name),
        )
        hold = asyncio.Event()  # never set: the rest of the body never comes

        async def requests() -> AsyncIterator[Request]:
            yield Request(header=input_header(LLV2, gid, action.description))
            for _ in range(CHUNKS_BEFORE_CUT):
                yield Request(body_chunk=Request.BodyChunk(partial_data=bytes(CHUNK)))
            await hold.wait()

        stub = computation_control_pb2_grpc.ComputationControlStub(channel)
        sending = asyncio.ensure_future(stub.AdvanceComputation(requests(), timeout=240))
        stage_dir = system.layout.blobs / worker / "computations" / gid / wait_stage

        async def written_half_way() -> Path | None:
            _, partial = files_of(stage_dir)
            grown = [p for p in partial if p.stat().st_size >= CHUNKS_BEFORE_CUT * CHUNK]
            return grown[0] if grown else None

        partial_file = await eventually(
            written_half_way, timeout=60, what=f"the body half written at {worker}"
        )
        server = f"{worker}-computation-control"
        await system.supervisor.stop_child(server, kill=True)
        with pytest.raises(grpc.aio.AioRpcError):
            await sending

        # Nothing visible, nothing recorded, the stage unchanged.
        visible, _ = files_of(stage_dir)
        assert visible == []
        cut = await receiver.token(gid)
        assert cut is not None and stage_name(cut) == wait_stage
        # The slot the input fills is still empty.
        assert output_slots(cut) and not any(slot.path for slot in output_slots(cut))
        assert partial_file.exists()  # what the killed writer left stays hidden

        await system.supervisor.start_child(server)
        await system.supervisor.wait_healthy(60, names=[server])
        os.killpg(scheduler_group, signal.SIGCONT)
        frozen = False
        outcome = await asyncio.wait_for(measuring, 360)
    finally:
        if frozen:
            os.killpg(scheduler_group, signal.SIGCONT)
        if sending is not None and not sending.done():
            sending.cancel()
        if not measuring.done():
            measuring.cancel()
        await asyncio.gather(measuring, *([sending] if sending else []), return_exceptions=True)
        with contextlib.suppress(Exception):
            if channel is not None:
                await channel.close()
        await aggregator.close()
        if receiver is not None:
            await receiver.close()

    check = check_result(system, LocalProtocol.LLV2, outcome.results[0])
    assert check.ok, check.detail
    # The input the worker took is the aggregator's real output, whole.
    (taken,) = files_of(stage_dir)[0]
    sent = files_of(system.layout.blobs / AGGREGATOR / "computations" / gid / "SETUP_PHASE")[0]
    assert taken.read_bytes() in [p.read_bytes() for p in sent]
    assert taken.stat().st_size < CHUNKS_BEFORE_CUT * CHUNK
    print(
        f"cut {partial_file.stat().st_size} bytes into {worker}'s {wait_stage} input; "
        f"the real input ({taken.stat().st_size} bytes) arrived after the restart"
    )
