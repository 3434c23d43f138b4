"""A whole HMSS run in one process, and the plaintext ground truth it must match (spec §A).

`run_hmss` plays every party in order: each EDP splits its capped vector into a seed and a data
share and routes them (§A.2: requisition i is fulfilled at worker `i mod 2`; its seed is sealed to
the other worker); both workers run SETUP_PHASE and exchange `ShufflePhaseInput` bytes; each runs
SHUFFLE_PHASE and sends an encoded `AggregationPhaseInput`; the aggregator decodes both and
aggregates. Every payload goes through its wire codec. Nothing touches the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from cmms.crypto.prng import SEED_LENGTH
from cmms.crypto.randomness import RandomSource
from cmms.crypto.sharing import split
from cmms.protocols.errors import InvalidProtocolInputError
from cmms.protocols.hmss.actions import aggregation_function, shuffle_function
from cmms.protocols.hmss.aggregation_phase import (
    AggregationPhaseRequest,
    ReachAndFrequencyResult,
    ReachResult,
)
from cmms.protocols.hmss.parameters import (
    FrequencyVectorParams,
    MeasurementType,
    NoiseConfig,
    maximum_combined_frequency,
)
from cmms.protocols.hmss.payloads import (
    SecretSeed,
    decode_aggregation_phase_input,
    decode_frequency_vector,
    decode_shuffle_phase_input,
    encode_aggregation_phase_input,
    encode_frequency_vector,
)
from cmms.protocols.hmss.setup_phase import (
    SetupPhaseRequest,
    assemble_shuffle_phase_request,
    run_setup_phase,
)
from cmms.protocols.hmss.stages import Role
from cmms.protocols.measurement import float32_width

WORKERS = (Role.FIRST_NON_AGGREGATOR, Role.SECOND_NON_AGGREGATOR)


class SeedSealer(Protocol):
    """Encrypts an EDP seed to a worker and opens it there (HPKE and signatures in production)."""

    def seal(self, seed: bytes, recipient: Role) -> bytes: ...

    def open(self, ciphertext: bytes, recipient: Role) -> bytes: ...


class AddressedSeedSealer:
    """No secrecy: tags the seed with its recipient, so a seed opened by the wrong worker fails."""

    def seal(self, seed: bytes, recipient: Role) -> bytes:
        return bytes([recipient.value]) + seed

    def open(self, ciphertext: bytes, recipient: Role) -> bytes:
        if not ciphertext or ciphertext[0] != recipient.value:
            raise InvalidProtocolInputError(f"seed was not sealed to {recipient.name}")
        return ciphertext[1:]


@dataclass(frozen=True)
class HmssConfig:
    """One HMSS measurement."""

    measurement_type: MeasurementType
    maximum_frequency: int = 1
    ring_modulus: int = 127
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    vid_sampling_interval_width: float = 1.0

    @property
    def value_cap(self) -> int:
        """What an EDP caps each register at: MF for R&F, 1 for reach."""
        return 1 if self.measurement_type is MeasurementType.REACH else self.maximum_frequency


def fulfilling_worker(requisition_index: int) -> Role:
    """The worker an EDP uploads its data share to: `nonAggregators[index mod 2]`."""
    return WORKERS[requisition_index % 2]


def run_hmss(
    frequency_vectors: Sequence[np.ndarray],
    config: HmssConfig,
    source: RandomSource,
    sealer: SeedSealer | None = None,
) -> ReachResult | ReachAndFrequencyResult:
    """Run the whole protocol on raw per-EDP frequency vectors and return the aggregator's result."""
    sealer = sealer or AddressedSeedSealer()
    if not frequency_vectors:
        raise InvalidProtocolInputError("HMSS needs at least one EDP")
    q = config.ring_modulus
    uploads: dict[Role, dict[str, bytes]] = {worker: {} for worker in WORKERS}
    held_seeds: dict[Role, list[SecretSeed]] = {worker: [] for worker in WORKERS}
    for index, raw in enumerate(frequency_vectors):
        vector = np.minimum(np.asarray(raw), config.value_cap).astype(np.uint8)
        seed = source.derive(f"edp-{index}").randbytes(SEED_LENGTH)
        fulfilling = fulfilling_worker(index)
        other = WORKERS[1 - WORKERS.index(fulfilling)]
        requisition_id = f"requisition-{index:04d}"
        uploads[fulfilling][requisition_id] = encode_frequency_vector(split(vector, q, seed))
        held_seeds[fulfilling].append(
            SecretSeed(requisition_id, sealer.seal(seed, other), vector.size, f"edp-{index}")
        )

    own_seeds = {w: source.derive(f"seed-{w.name}").randbytes(SEED_LENGTH) for w in WORKERS}
    setup_payloads = {
        worker: run_setup_phase(
            SetupPhaseRequest(worker, own_seeds[worker], tuple(held_seeds[worker]))
        ).payload
        for worker in WORKERS
    }

    shuffle = shuffle_function(config.measurement_type)
    aggregation_inputs = []
    for worker in WORKERS:
        peer = WORKERS[1 - WORKERS.index(worker)]
        data_shares = {
            rid: decode_frequency_vector(body, q) for rid, body in uploads[worker].items()
        }

        def open_seed(seed: SecretSeed, recipient: Role = worker) -> bytes:
            return sealer.open(seed.secret_seed_ciphertext, recipient)

        request = assemble_shuffle_phase_request(
            worker,
            own_seeds[worker],
            decode_shuffle_phase_input(setup_payloads[peer]),
            data_shares,
            open_seed,
            config.value_cap,
            q,
            config.noise,
        )
        response = shuffle(request, source.derive(f"noise-{worker.name}"))
        aggregation_inputs.append(
            encode_aggregation_phase_input(response.share_vector, request.params.register_count)
        )

    decoded = [decode_aggregation_phase_input(payload, q) for payload in aggregation_inputs]
    if decoded[0].register_count != decoded[1].register_count:
        raise InvalidProtocolInputError("the workers report different register counts")
    params = FrequencyVectorParams(
        decoded[0].register_count,
        maximum_combined_frequency(config.value_cap, len(frequency_vectors)),
        q,
    )
    aggregation = AggregationPhaseRequest(
        params=params,
        share_vectors=(decoded[0].share_vector, decoded[1].share_vector),
        vid_sampling_interval_width=config.vid_sampling_interval_width,
        maximum_frequency=config.value_cap,
        noise=config.noise,
    )
    return aggregation_function(config.measurement_type)(aggregation)


def hmss_ground_truth(
    frequency_vectors: Sequence[np.ndarray], config: HmssConfig
) -> ReachResult | ReachAndFrequencyResult:
    """The same measurement in plaintext: capped per-EDP vectors summed, histogram, MF+ bucket."""
    combined = np.sum(
        [np.minimum(np.asarray(v, dtype=np.int64), config.value_cap) for v in frequency_vectors],
        axis=0,
    )
    width = float32_width(config.vid_sampling_interval_width)
    reached = int(np.count_nonzero(combined))
    reach = int(reached / width)
    if config.measurement_type is MeasurementType.REACH:
        return ReachResult(reach)
    mf = config.maximum_frequency
    buckets = np.bincount(np.minimum(combined, mf), minlength=mf + 1)
    distribution = {k: int(buckets[k]) / reached for k in range(1, mf + 1) if buckets[k]}
    return ReachAndFrequencyResult(reach, distribution)
