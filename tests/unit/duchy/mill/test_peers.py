"""PeerSender: the peer-stage check before sending, and chunking."""

from __future__ import annotations

import grpc
import pytest

from cmms.duchy.mill.errors import TransientError
from cmms.duchy.mill.peers import Delivery, PeerSender
from cmms.protocols.hmss.stages import Stage
from cmms.protocols.stages import ProtocolType
from cmms.testing.mill import FakePeers

HMSS = ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE
EXPECTED = Stage.WAIT_ON_AGGREGATION_INPUT


async def send(peers: FakePeers, payload: bytes = b"x" * 10, chunk_size: int = 4) -> Delivery:
    sent = await PeerSender(peers, chunk_size).send(HMSS, "aggregator", "gid", 3, EXPECTED, payload)
    return sent.delivery


async def test_a_peer_in_the_expected_stage_gets_the_header_then_chunks() -> None:
    peers = FakePeers()
    peers.stages["aggregator"] = EXPECTED

    assert await send(peers) is Delivery.SENT

    [delivered] = peers.delivered
    assert delivered.header.name == "computations/gid"
    assert delivered.header.honest_majority_share_shuffle.description == 3
    assert delivered.payload == b"x" * 10
    assert delivered.chunks == 3


async def test_a_peer_past_the_stage_is_skipped() -> None:
    peers = FakePeers()
    peers.stages["aggregator"] = Stage.COMPLETE
    assert await send(peers) is Delivery.ALREADY_RECEIVED
    assert peers.delivered == []


async def test_a_peer_behind_the_stage_means_try_again_later() -> None:
    peers = FakePeers()
    peers.stages["aggregator"] = Stage.INITIALIZED
    with pytest.raises(TransientError, match="not yet"):
        await send(peers)
    assert peers.delivered == []


async def test_a_peer_reporting_no_stage_of_the_protocol_gets_the_input() -> None:
    peers = FakePeers()
    assert await send(peers) is Delivery.SENT


async def test_a_peer_that_does_not_know_the_computation_yet_is_retried_later() -> None:
    peers = FakePeers()
    peers.faults.add("get_stage:aggregator", grpc.StatusCode.NOT_FOUND)
    with pytest.raises(TransientError, match="does not know"):
        await send(peers)


def test_chunks_must_have_a_size() -> None:
    with pytest.raises(ValueError):
        PeerSender(FakePeers(), 0)
