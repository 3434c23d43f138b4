"""Upload framing and the choice of fulfilling duchy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cmms.api.public.v1 import protocol_config_pb2
from cmms.clients.edp.fulfillment import (
    BODY_CHUNK_SIZE,
    NoDuchyTargetError,
    Request,
    fulfilling_duchy,
    request_stream,
)
from cmms.clients.edp.verification import VerifiedRequisition, verify_requisition
from cmms.clients.mc.measurement import MeasurementParams
from cmms.crypto.randomness import SeededRandomSource
from cmms.testing.requisitions import ConsentWorld, hmss_config, llv2_config, trustee_config


def test_header_comes_first_then_32_kib_chunks_with_a_shorter_tail() -> None:
    header = Request.Header(name="dataProviders/edp1/requisitions/r", nonce=7)
    body = [b"a" * 1000, b"b" * (2 * BODY_CHUNK_SIZE), b"c" * 24]
    requests = list(request_stream(header, body))
    assert requests[0].WhichOneof("payload") == "header"
    assert requests[0].header == header
    chunks = [r.body_chunk.data for r in requests[1:]]
    assert all(r.WhichOneof("payload") == "body_chunk" for r in requests[1:])
    assert [len(c) for c in chunks] == [BODY_CHUNK_SIZE, BODY_CHUNK_SIZE, 1024]
    assert b"".join(chunks) == b"".join(body)


def test_empty_body_is_just_the_header() -> None:
    assert len(list(request_stream(Request.Header(name="r"), [b""]))) == 1


async def _verified(
    world: ConsentWorld, config: protocol_config_pb2.ProtocolConfig, duchies: list[str]
) -> list[VerifiedRequisition]:
    random = SeededRandomSource("fulfillment")
    prepared = world.prepare(MeasurementParams(), ["edp1", "edp2", "edp3"], random)
    requisitions, _ = world.requisitions(prepared, config, duchies, random)
    return [
        await verify_requisition(
            requisitions[edp], world.data_providers[edp], world.certificates, now=datetime.now(UTC)
        )
        for edp in ("edp1", "edp2", "edp3")
    ]


async def test_hmss_goes_to_the_worker_without_a_key(world: ConsentWorld) -> None:
    for verified in await _verified(world, hmss_config(), ["worker1", "worker2"]):
        assert verified.hmss is not None
        assert fulfilling_duchy(verified, {"worker1", "worker2"}) == verified.hmss.fulfilling_duchy
        with pytest.raises(NoDuchyTargetError):
            fulfilling_duchy(verified, {verified.hmss.peer_duchy})


async def test_llv2_picks_a_reachable_participant_deterministically(world: ConsentWorld) -> None:
    duchies = ["aggregator", "worker1", "worker2"]
    for verified in await _verified(world, llv2_config(), duchies):
        chosen = fulfilling_duchy(verified, set(duchies))
        assert chosen in duchies
        assert fulfilling_duchy(verified, set(duchies)) == chosen
        assert fulfilling_duchy(verified, {"worker2", "elsewhere"}) == "worker2"


async def test_trustee_goes_to_its_single_duchy(world: ConsentWorld) -> None:
    for verified in await _verified(world, trustee_config(), ["aggregator"]):
        assert fulfilling_duchy(verified, {"aggregator", "worker1"}) == "aggregator"
