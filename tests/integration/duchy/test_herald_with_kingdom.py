"""The Herald against a real in-process Kingdom and a real duchy internal API server, over mTLS.

The test plays the parts nobody else plays yet: the consumer and EDPs (through the Kingdom test
kit) and the mill (moving the local computation through its own stages via the internal API).
The Herald does the rest on its own, following the Kingdom's stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cmms.api.internal.duchy.protocol.v1 import common_pb2, hmss_pb2, llv2_pb2
from cmms.api.internal.duchy.v1 import (
    computation_details_pb2,
    computation_token_pb2,
    computations_service_pb2,
    computations_service_pb2_grpc,
    continuation_tokens_service_pb2,
    continuation_tokens_service_pb2_grpc,
)
from cmms.api.public.v1 import measurements_pb2
from cmms.api.system.v1 import computation_pb2
from cmms.common.grpc import ClientTls, ServerTls, secure_channel
from cmms.common.identity import Principal, acting_as
from cmms.common.kms import create_local_kek_file, default_kms_registry
from cmms.common.pki import PkiLayout
from cmms.crypto.hybrid import HybridPublicKey
from cmms.duchy.deployable import DuchyDeployable
from cmms.duchy.herald.config import dump_protocols_setup_config
from cmms.duchy.herald.processor import Outcome
from cmms.duchy.herald.runner import wire_herald
from cmms.duchy.herald.settings import HeraldSettings
from cmms.duchy.internal_api.convert import stage_to_proto
from cmms.duchy.internal_api.server import build_internal_api
from cmms.duchy.private_keys import PrivateKeyStore
from cmms.duchy.settings import InternalApiSettings
from cmms.kingdom.db.records import Capabilities
from cmms.kingdom.server import KingdomServer
from cmms.storage import open_blob_store
from cmms.testing.herald import setup_config
from cmms.testing.kingdom import MC, Flow, KingdomWorld
from cmms.testing.pki import dev_pki

__all__ = ["dev_pki"]

State = computation_pb2.Computation.State
Stage = llv2_pb2.LiquidLegionsV2.Stage
Token = computation_token_pb2.ComputationToken
DUCHY = "worker1"


@dataclass
class Events:
    """What the Herald reports after processing each streamed computation."""

    queue: asyncio.Queue[tuple[int, Outcome]] = field(default_factory=asyncio.Queue)

    def __call__(self, computation: computation_pb2.Computation, outcome: Outcome) -> None:
        self.queue.put_nowait((computation.state, outcome))

    async def processed(self, state: int) -> Outcome:
        """Wait until the Herald has processed the computation in `state`."""
        while True:
            seen, outcome = await self.queue.get()
            if seen == state:
                return outcome


@dataclass
class Stack:
    world: KingdomWorld
    flow: Flow
    local: computations_service_pb2_grpc.ComputationsStub
    tokens: continuation_tokens_service_pb2_grpc.ContinuationTokensStub
    events: Events
    private_keys: PrivateKeyStore

    async def token(self, gid: str) -> Token:
        reply = await self.local.GetComputationToken(
            computations_service_pb2.GetComputationTokenRequest(global_computation_id=gid)
        )
        token: Token = reply.token
        return token

    async def mill_advances(self, gid: str, stage: int, after: int, protocol: int = 1) -> None:
        """What this duchy's mill would do: move to its next stage (no blobs involved here)."""
        await self.local.AdvanceComputationStage(
            computations_service_pb2.AdvanceComputationStageRequest(
                token=await self.token(gid),
                next_computation_stage=stage_to_proto(protocol, stage),
                after_transition=after,  # type: ignore[arg-type]
            )
        )


@pytest.fixture
async def stack(tmp_path: Path, dev_pki: PkiLayout) -> AsyncIterator[Stack]:
    async with contextlib.AsyncExitStack() as cleanup:
        world = await KingdomWorld.open(f"sqlite+aiosqlite:///{tmp_path / 'kingdom.db'}", dev_pki)
        cleanup.push_async_callback(world.close)
        kingdom = KingdomServer(
            world.repositories,
            ServerTls.from_pki(dev_pki, Principal.kingdom()),
            health_port=None,
            metrics_port=None,
            shutdown_grace_seconds=0.1,
        )
        kingdom_ports = await kingdom.start()
        cleanup.push_async_callback(kingdom.stop)
        files = dev_pki.party(Principal.duchy(DUCHY))
        tls = {
            "tls_cert_file": files.tls_cert,
            "tls_key_file": files.tls_key,
            "cert_collection_file": dev_pki.all_root_certs,
        }
        internal: DuchyDeployable = await build_internal_api(
            InternalApiSettings(
                **tls,
                trust_config_file=dev_pki.trust_config,
                duchy_name=DUCHY,
                database_url=f"sqlite:///{tmp_path / 'duchy.db'}",
                blob_storage_url=f"file://{tmp_path / 'blobs'}",
                migrate=True,
                port=0,
                health_port=-1,
                http_port=-1,
                shutdown_grace_seconds=0.0,
            )
        )
        internal_ports = await internal.start()
        cleanup.push_async_callback(internal.stop)
        kek_uri = create_local_kek_file(tmp_path / "kek.tink")
        key_blobs = open_blob_store(f"file://{tmp_path / 'keys'}")
        cleanup.push_async_callback(key_blobs.close)
        setup_file = tmp_path / "protocols_setup.json"
        setup_file.write_text(dump_protocols_setup_config(setup_config()))
        events = Events()
        wired = wire_herald(
            HeraldSettings(
                **tls,
                duchy_name=DUCHY,
                kingdom_system_api_target=f"127.0.0.1:{kingdom_ports.system.grpc}",
                internal_api_target=f"127.0.0.1:{internal_ports.grpc}",
                protocols_setup_config=setup_file,
                # worker1 is an HMSS worker, so it must be able to keep private keys.
                key_encryption_key_uri=kek_uri,
                private_key_store_url=f"file://{tmp_path / 'keys'}",
                herald_id="herald-under-test",
            ),
            observer=events,
        )
        cleanup.push_async_callback(wired.close)
        stop = asyncio.Event()
        running = asyncio.create_task(wired.herald.run(stop))

        async def stop_herald() -> None:
            stop.set()
            await running

        cleanup.push_async_callback(stop_herald)
        channel = secure_channel(
            f"127.0.0.1:{internal_ports.grpc}", ClientTls.from_pki(dev_pki, Principal.duchy(DUCHY))
        )
        cleanup.push_async_callback(channel.close)
        yield Stack(
            world,
            Flow(world),
            computations_service_pb2_grpc.ComputationsStub(channel),
            continuation_tokens_service_pb2_grpc.ContinuationTokensStub(channel),
            events,
            PrivateKeyStore(key_blobs, default_kms_registry().get_aead(kek_uri)),
        )


async def test_herald_follows_an_llv2_computation_from_creation_to_cancellation(
    stack: Stack,
) -> None:
    request = stack.world.measurement_request(["edp1", "edp2"])
    measurement = await stack.flow.create(request)
    computation = await stack.flow.computation_of(measurement)
    assert computation.mpc_protocol_config.WhichOneof("protocol") == "liquid_legions_v2"
    gid = computation.name.split("/")[1]

    # PENDING_REQUISITION_PARAMS: the Herald creates the local computation.
    assert await stack.events.processed(State.PENDING_REQUISITION_PARAMS) is Outcome.DONE
    token = await stack.token(gid)
    assert token.computation_stage.liquid_legions_v2 == Stage.INITIALIZATION_PHASE
    details = token.computation_details.liquid_legions_v2
    assert details.parameters.maximum_frequency == 10
    assert len(token.requisitions) == 2

    # The mill publishes the key; every duchy does; the EDPs fulfil.
    await stack.mill_advances(
        gid,
        Stage.WAIT_REQUISITIONS_AND_KEY_SET,
        computations_service_pb2.AdvanceComputationStageRequest.DO_NOT_ADD_TO_QUEUE,
    )
    await stack.flow.set_all_params(computation)
    await stack.flow.fulfill_all(request, computation)

    # PENDING_PARTICIPANT_CONFIRMATION: ring, keys and nonces recorded; confirmation queued.
    assert await stack.events.processed(State.PENDING_PARTICIPANT_CONFIRMATION) is Outcome.DONE
    token = await stack.token(gid)
    assert token.computation_stage.liquid_legions_v2 == Stage.CONFIRMATION_PHASE
    ring = [p.duchy_id for p in token.computation_details.liquid_legions_v2.participants]
    assert sorted(ring) == ["aggregator", "worker1", "worker2"] and ring[-1] == "aggregator"
    assert all(r.details.nonce for r in token.requisitions)
    assert {r.details.nonce for r in token.requisitions} == {
        request.nonce_of("edp1"),
        request.nonce_of("edp2"),
    }

    # The mill confirms; so does everybody: PENDING_COMPUTATION starts this worker.
    await stack.mill_advances(
        gid,
        Stage.WAIT_TO_START,
        computations_service_pb2.AdvanceComputationStageRequest.DO_NOT_ADD_TO_QUEUE,
    )
    await stack.flow.confirm_all(computation)
    assert await stack.events.processed(State.PENDING_COMPUTATION) is Outcome.DONE
    token = await stack.token(gid)
    assert token.computation_stage.liquid_legions_v2 == Stage.SETUP_PHASE

    # The consumer cancels: the local computation ends as CANCELED.
    with acting_as(MC):
        await stack.flow.servicers.measurements.CancelMeasurement(
            measurements_pb2.CancelMeasurementRequest(name=measurement.name), None
        )
    assert await stack.events.processed(State.CANCELLED) is Outcome.DONE
    token = await stack.token(gid)
    assert token.computation_stage.liquid_legions_v2 == Stage.COMPLETE
    assert token.computation_details.ending_state == (
        computation_details_pb2.ComputationDetails.CANCELED
    )
    stored = await stack.tokens.GetContinuationToken(
        continuation_tokens_service_pb2.GetContinuationTokenRequest()
    )
    assert stored.token  # the position after the last processed computation


async def test_a_parameter_the_herald_rejects_fails_the_measurement(stack: Stack) -> None:
    request = stack.world.measurement_request(["edp1", "edp2"], delta=0.0)
    measurement = await stack.flow.create(request)

    assert await stack.events.processed(State.PENDING_REQUISITION_PARAMS) is Outcome.FAILED
    failed = await stack.flow.get_measurement(measurement.name)
    assert failed.state == measurements_pb2.Measurement.FAILED
    assert "delta" in failed.failure.message
    assert "Herald failed after 1 attempts" in failed.failure.message


async def test_herald_creates_and_starts_hmss_at_the_first_worker(stack: Stack) -> None:
    await stack.world.set_capabilities(["edp1", "edp2"], Capabilities(hmss_supported=True))
    request = stack.world.measurement_request(["edp1", "edp2"])
    measurement = await stack.flow.create(request)
    computation = await stack.flow.computation_of(measurement)
    assert computation.mpc_protocol_config.WhichOneof("protocol") == "honest_majority_share_shuffle"
    gid = computation.name.split("/")[1]

    assert await stack.events.processed(State.PENDING_REQUISITION_PARAMS) is Outcome.DONE
    token = await stack.token(gid)
    hmss = token.computation_details.honest_majority_share_shuffle
    assert hmss.role == common_pb2.FIRST_NON_AGGREGATOR
    assert len(hmss.random_seed) == 48
    # The sealed private key is in the store, under the id the details record.
    private_key = await stack.private_keys.load(hmss.encryption_key_pair.private_key_id)
    public_key = HybridPublicKey.from_keyset(hmss.encryption_key_pair.public_key.data)
    assert private_key.decrypt(public_key.encrypt(b"seed")) == b"seed"

    # The mill publishes the key and waits to start; the EDPs fulfil at their workers.
    await stack.mill_advances(
        gid,
        hmss_pb2.HonestMajorityShareShuffle.WAIT_TO_START,
        computations_service_pb2.AdvanceComputationStageRequest.DO_NOT_ADD_TO_QUEUE,
        protocol=3,
    )
    await stack.flow.set_all_params(computation)
    await stack.flow.fulfill_all(request, computation)

    assert await stack.events.processed(State.PENDING_COMPUTATION) is Outcome.DONE
    token = await stack.token(gid)
    assert token.computation_stage.honest_majority_share_shuffle == (
        hmss_pb2.HonestMajorityShareShuffle.SETUP_PHASE
    )
