"""HMSS SETUP_PHASE and the assembly of a worker's shuffle-phase request (spec §A.2 steps 3, 5).

In SETUP_PHASE a worker sends its peer a `ShufflePhaseInput`: its own 48-byte seed plus the
encrypted EDP seeds of the requisitions fulfilled at it. Before SHUFFLE_PHASE it combines what it
holds (data shares) with what the peer sent (seeds, opened by an injected function that decrypts
and verifies them) into a `ShufflePhaseRequest`, checking that every register count agrees.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cmms.crypto.prng import SEED_LENGTH
from cmms.protocols.errors import InvalidProtocolInputError
from cmms.protocols.hmss.actions import InputDescription, action_for
from cmms.protocols.hmss.parameters import (
    FrequencyVectorParams,
    NoiseConfig,
    maximum_combined_frequency,
)
from cmms.protocols.hmss.payloads import (
    SecretSeed,
    ShufflePhaseInputContent,
    encode_shuffle_phase_input,
)
from cmms.protocols.hmss.shuffle_phase import ShufflePhaseRequest, WorkerOrder, combine_worker_seeds
from cmms.protocols.hmss.stages import Role, Stage


@dataclass(frozen=True)
class SetupPhaseRequest:
    """A worker's own seed and the seeds of the requisitions fulfilled at it."""

    role: Role
    own_random_seed: bytes
    held_seeds: tuple[SecretSeed, ...]


@dataclass(frozen=True)
class SetupPhaseResponse:
    """The serialized `ShufflePhaseInput`, to whom it goes and as which input description."""

    payload: bytes
    recipient: Role
    description: InputDescription
    expected_peer_stage: Stage
    next_stage: Stage


def run_setup_phase(request: SetupPhaseRequest) -> SetupPhaseResponse:
    """Build the `ShufflePhaseInput` for the peer worker."""
    action = action_for(request.role, Stage.SETUP_PHASE)
    assert action.recipient is not None and action.description is not None
    assert action.expected_peer_stage is not None and action.next_stage is not None
    content = ShufflePhaseInputContent(request.own_random_seed, request.held_seeds)
    return SetupPhaseResponse(
        payload=encode_shuffle_phase_input(content),
        recipient=action.recipient,
        description=action.description,
        expected_peer_stage=action.expected_peer_stage,
        next_stage=action.next_stage,
    )


def worker_order(role: Role) -> WorkerOrder:
    """FIRST for the first non-aggregator, SECOND for the second."""
    if role is Role.FIRST_NON_AGGREGATOR:
        return WorkerOrder.FIRST
    if role is Role.SECOND_NON_AGGREGATOR:
        return WorkerOrder.SECOND
    raise InvalidProtocolInputError(f"{role.name} is not a worker")


def assemble_shuffle_phase_request(
    role: Role,
    own_random_seed: bytes,
    peer_input: ShufflePhaseInputContent,
    data_shares: Mapping[str, np.ndarray],
    open_seed: Callable[[SecretSeed], bytes],
    maximum_frequency: int,
    ring_modulus: int,
    noise: NoiseConfig,
) -> ShufflePhaseRequest:
    """The shuffle request from local data shares (by requisition id) and the peer's seeds.

    Requisitions are taken sorted by id; `maxCombined = MF * #requisitions` (pitfall 1).
    """
    held_ids = set(data_shares)
    peer_ids = [seed.requisition_id for seed in peer_input.secret_seeds]
    if len(set(peer_ids)) != len(peer_ids) or held_ids & set(peer_ids):
        raise InvalidProtocolInputError("a requisition appears more than once across the workers")
    counts = {rid: int(share.size) for rid, share in data_shares.items()}
    counts.update({seed.requisition_id: seed.register_count for seed in peer_input.secret_seeds})
    register_count = _common_register_count(counts)
    seeds = []
    for seed in sorted(peer_input.secret_seeds, key=lambda s: s.requisition_id):
        opened = open_seed(seed)
        if len(opened) != SEED_LENGTH:
            raise InvalidProtocolInputError(
                f"requisition {seed.requisition_id!r}: seed must be {SEED_LENGTH} bytes, "
                f"got {len(opened)}"
            )
        seeds.append(opened)
    return ShufflePhaseRequest(
        params=FrequencyVectorParams(
            register_count,
            maximum_combined_frequency(maximum_frequency, len(counts)),
            ring_modulus,
        ),
        common_random_seed=combine_worker_seeds(own_random_seed, peer_input.peer_random_seed),
        order=worker_order(role),
        noise=noise,
        data_shares=tuple(data_shares[rid] for rid in sorted(data_shares)),
        seed_shares=tuple(seeds),
    )


def _common_register_count(counts: Mapping[str, int]) -> int:
    if not counts:
        raise InvalidProtocolInputError("the shuffle phase needs at least one requisition")
    distinct: Sequence[int] = sorted(set(counts.values()))
    if len(distinct) != 1:
        detail = ", ".join(f"{rid}: {count}" for rid, count in sorted(counts.items()))
        raise InvalidProtocolInputError(f"requisitions report different register counts ({detail})")
    return distinct[0]
