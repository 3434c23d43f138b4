"""HMSS shuffle phase: the §A.4 end-to-end vector, PRNG draw order, noise layout, §D.1/§D.2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cmms.crypto.prng import AesCtrPrng, secure_shuffle
from cmms.crypto.randomness import SeededRandomSource
from cmms.crypto.sharing import add_mod, combine, split, sub_mod
from cmms.dp.parameters import PrivacyParams
from cmms.protocols.errors import InvalidProtocolInputError
from cmms.protocols.hmss.aggregation_phase import (
    AggregationPhaseRequest,
    complete_reach_and_frequency_aggregation_phase,
    complete_reach_only_aggregation_phase,
)
from cmms.protocols.hmss.noise import blind_histogram_noiser, reach_and_frequency_noise
from cmms.protocols.hmss.parameters import FrequencyVectorParams, NoiseConfig, NoiseMechanism
from cmms.protocols.hmss.shuffle_phase import (
    ShufflePhaseRequest,
    WorkerOrder,
    combine_worker_seeds,
    complete_reach_and_frequency_shuffle_phase,
    complete_reach_only_shuffle_phase,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[3] / "vectors" / "hmss_prng.json").read_text()
)
E2E = VECTORS["end_to_end"]
Q = E2E["q"]
SEED_A, SEED_B = bytes([E2E["edp_a"]["seed_byte"]]) * 48, bytes([E2E["edp_b"]["seed_byte"]]) * 48
COMMON = combine_worker_seeds(b"\x11" * 48, b"\x22" * 48)
PARAMS = FrequencyVectorParams(8, 4, Q)
# DG with (10, 1) has offset 1: T = 2 + 2*4 = 10 registers per worker for maxCombined 4 (R&F).
NOISE = NoiseConfig(
    NoiseMechanism.DISCRETE_GAUSSIAN, PrivacyParams(10.0, 1.0), PrivacyParams(10.0, 1.0)
)


def _requests(noise: NoiseConfig = NoiseConfig()) -> tuple[ShufflePhaseRequest, ...]:
    share_a = split(E2E["edp_a"]["vector"], Q, SEED_A)
    share_b = split(E2E["edp_b"]["vector"], Q, SEED_B)
    # EDP A's data share went to W1 (its seed to W2), B's the other way round.
    w1 = ShufflePhaseRequest(PARAMS, COMMON, WorkerOrder.FIRST, noise, (share_a,), (SEED_B,))
    w2 = ShufflePhaseRequest(PARAMS, COMMON, WorkerOrder.SECOND, noise, (share_b,), (SEED_A,))
    return w1, w2


def test_common_seed_is_xor() -> None:
    assert bytes([E2E["common_seed_byte"]]) * 48 == COMMON
    with pytest.raises(InvalidProtocolInputError, match="48 bytes"):
        combine_worker_seeds(b"\x11" * 47, b"\x22" * 48)


def test_end_to_end_vector_reach_and_frequency() -> None:
    w1, w2 = (
        complete_reach_and_frequency_shuffle_phase(r, SeededRandomSource(1)) for r in _requests()
    )
    assert w1.share_vector.tolist() == E2E["rf_w1_out"]
    assert w2.share_vector.tolist() == E2E["rf_w2_out"]
    assert add_mod(w1.share_vector, w2.share_vector, Q).tolist() == E2E["rf_sum"]


def test_end_to_end_vector_reach_only() -> None:
    w1, w2 = (complete_reach_only_shuffle_phase(r, SeededRandomSource(1)) for r in _requests())
    assert w1.share_vector.tolist() == E2E["reach_w1_out"]
    assert w2.share_vector.tolist() == E2E["reach_w2_out"]
    total = add_mod(w1.share_vector, w2.share_vector, Q)
    assert total.tolist() == E2E["reach_sum"]
    assert np.count_nonzero(total) == np.count_nonzero(
        np.add(E2E["edp_a"]["vector"], E2E["edp_b"]["vector"])
    )


def test_noise_path_draw_order_and_layout() -> None:
    # Common PRNG 0x33*48 with T = 10: rv1, rv2 and the shuffle seed of the §A.4 stream vector.
    stream = VECTORS["stream_position"][0]
    rv1, rv2 = np.array(stream["rv1"]), np.array(stream["rv2"])
    shuffle_seed = bytes.fromhex(stream["shuffle_seed_hex"])
    for request in _requests(NOISE):
        assert request.noise.reach is not None and request.noise.frequency is not None
        source = SeededRandomSource(request.order.value)
        response = complete_reach_and_frequency_shuffle_phase(request, source)
        noise = reach_and_frequency_noise(
            blind_histogram_noiser(request.noise.reach, NOISE.mechanism),
            blind_histogram_noiser(request.noise.frequency, NOISE.mechanism),
            4,
            Q,
            SeededRandomSource(request.order.value),
        )
        assert noise.size == 10
        data = combine(
            [
                *request.data_shares,
                *(AesCtrPrng(s).uniform_range(8, Q) for s in request.seed_shares),
            ],
            Q,
        )
        if request.order is WorkerOrder.FIRST:
            tail = [sub_mod(noise, rv1, Q), rv2]
        else:
            tail = [rv1, sub_mod(noise, rv2, Q)]
        expected = secure_shuffle(np.concatenate([data, *tail]), shuffle_seed)
        assert response.share_vector.tolist() == expected.tolist()


def test_reach_only_noise_path_draw_order() -> None:
    # Reach-only draws r (N non-zero) before rv1, rv2 and the shuffle seed.
    noise = NoiseConfig(NoiseMechanism.DISCRETE_GAUSSIAN, PrivacyParams(10.0, 1.0))
    w1_request, w2_request = _requests(noise)
    w1 = complete_reach_only_shuffle_phase(w1_request, SeededRandomSource(1)).share_vector
    w2 = complete_reach_only_shuffle_phase(w2_request, SeededRandomSource(2)).share_vector
    prng = AesCtrPrng(COMMON)
    multipliers = prng.nonzero_uniform_range(8, Q)
    assert multipliers.tolist() == E2E["reach_multiplier"]
    rv1, rv2 = prng.uniform_range(2, Q), prng.uniform_range(2, Q)
    shuffle_seed = prng.random_bytes(48)
    unshuffle = np.argsort(secure_shuffle(np.arange(12), shuffle_seed))
    assert w1[unshuffle][10:].tolist() == rv2.tolist()
    assert w2[unshuffle][8:10].tolist() == rv1.tolist()
    total = add_mod(w1, w2, Q)[unshuffle]
    plain = np.add(E2E["edp_a"]["vector"], E2E["edp_b"]["vector"])
    assert total[:8].tolist() == ((plain * multipliers) % Q).tolist()
    # Each worker's c0 in [0, 2] noise registers are non-zero, the rest are zero.
    assert np.count_nonzero(total[8:]) <= 4


def test_reach_only_needs_prime_modulus() -> None:
    request = ShufflePhaseRequest(
        FrequencyVectorParams(2, 4, 8), COMMON, WorkerOrder.FIRST, data_shares=(np.array([1, 0]),)
    )
    with pytest.raises(InvalidProtocolInputError, match="prime"):
        complete_reach_only_shuffle_phase(request, SeededRandomSource(1))


@pytest.mark.parametrize(
    ("data_shares", "seed_shares", "match"),
    [
        ((), (), "at least one share"),
        ((np.array([1, 2, 3]),), (), "register count is 8"),
        ((np.array([1, 2, 3, 4, 5, 6, 7, 127]),), (), "127"),
        ((), (b"x" * 47,), "48 bytes"),
    ],
)
def test_bad_shares(
    data_shares: tuple[np.ndarray, ...], seed_shares: tuple[bytes, ...], match: str
) -> None:
    request = ShufflePhaseRequest(
        PARAMS, COMMON, WorkerOrder.FIRST, NoiseConfig(), data_shares, seed_shares
    )
    with pytest.raises(InvalidProtocolInputError, match=match):
        complete_reach_and_frequency_shuffle_phase(request, SeededRandomSource(1))


def test_d1_noise_registers() -> None:
    # q = 128, DG (reach eps 0.1, frequency eps 1, delta 1e-6), maxCombined 51.
    reach = blind_histogram_noiser(PrivacyParams(0.1, 1e-6), NoiseMechanism.DISCRETE_GAUSSIAN)
    frequency = blind_histogram_noiser(PrivacyParams(1.0, 1e-6), NoiseMechanism.DISCRETE_GAUSSIAN)
    noise = reach_and_frequency_noise(reach, frequency, 51, 128, SeededRandomSource(5))
    assert noise.size == 2 * reach.offset + 51 * 2 * frequency.offset
    counts = np.bincount(noise, minlength=128)
    assert counts[0] <= 2 * reach.offset
    assert all(counts[k] <= 2 * frequency.offset for k in range(1, 52))
    assert counts[52:127].sum() == 0
    assert counts[127] == noise.size - counts[:52].sum()
    with pytest.raises(InvalidProtocolInputError, match="plus one"):
        FrequencyVectorParams(10, 51, 52)


def _random_run(
    reach_only: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, NoiseConfig, FrequencyVectorParams]:
    # The §D.2 shuffle test setting: N = 100, E = 5, MF = 2, maxCombined = 11, q = 127, DG.
    rng = np.random.default_rng(7)
    n, edps, mf = 100, 5, 2
    vectors = rng.integers(0, (1 if reach_only else mf) + 1, size=(edps, n))
    seeds = [bytes([i + 1]) * 48 for i in range(edps)]
    shares = [split(v, 127, s) for v, s in zip(vectors, seeds, strict=True)]
    noise = NoiseConfig(
        NoiseMechanism.DISCRETE_GAUSSIAN,
        PrivacyParams(1.0 if reach_only else 0.1, 0.1),
        None if reach_only else PrivacyParams(1.0, 0.1),
    )
    params = FrequencyVectorParams(n, 11, 127)
    shuffle = (
        complete_reach_only_shuffle_phase
        if reach_only
        else complete_reach_and_frequency_shuffle_phase
    )
    # W1 holds the data shares of EDPs 0, 2, 4 and the seeds of 1, 3; W2 the rest.
    w1 = shuffle(
        ShufflePhaseRequest(
            params, COMMON, WorkerOrder.FIRST, noise, tuple(shares[0::2]), tuple(seeds[1::2])
        ),
        SeededRandomSource(11),
    )
    w2 = shuffle(
        ShufflePhaseRequest(
            params, COMMON, WorkerOrder.SECOND, noise, tuple(shares[1::2]), tuple(seeds[0::2])
        ),
        SeededRandomSource(12),
    )
    return vectors.sum(axis=0), w1.share_vector, w2.share_vector, noise, params


def test_d2_random_reach_and_frequency_run() -> None:
    truth, w1, w2, noise, params = _random_run(reach_only=False)
    assert noise.reach is not None and noise.frequency is not None
    reach = blind_histogram_noiser(noise.reach, noise.mechanism)
    frequency = blind_histogram_noiser(noise.frequency, noise.mechanism)
    t = reach.baseline + frequency.baseline * 11
    assert t == 2 * 54 + 2 * 6 * 11
    assert w1.size == w2.size == 100 + 2 * t
    combined = add_mod(w1, w2, 127)
    counts = np.bincount(combined, minlength=127)
    assert len(np.flatnonzero(counts)) == 2 + 11
    true_counts = np.bincount(truth, minlength=12)
    assert all(counts[k] - true_counts[k] <= 2 * 2 * frequency.offset for k in range(1, 12))
    result = complete_reach_and_frequency_aggregation_phase(
        AggregationPhaseRequest(params, (w1, w2), 1.0, maximum_frequency=2, noise=noise)
    )
    assert abs(result.reach - np.count_nonzero(truth)) <= 2 * reach.offset


def test_d2_random_reach_only_run() -> None:
    truth, w1, w2, noise, params = _random_run(reach_only=True)
    assert noise.reach is not None
    reach = blind_histogram_noiser(noise.reach, noise.mechanism)
    assert w1.size == 100 + 2 * reach.baseline
    result = complete_reach_only_aggregation_phase(
        AggregationPhaseRequest(params, (w1, w2), 0.5, noise=noise)
    )
    assert abs(result.reach - int(np.count_nonzero(truth) / 0.5)) <= 2 * reach.offset / 0.5


def test_noise_path_with_rejections_and_a_discarded_tail() -> None:
    # §A.4 stream vector for seed 0x0c*48, T = 100: rv1 needs a second batch and discards a byte.
    # DG (10, 1) has offset 1, so T = 2 + 2*49 = 100 registers for maxCombined 49.
    stream = VECTORS["stream_position"][1]
    common = bytes([stream["seed_byte"]]) * 48
    params = FrequencyVectorParams(8, 49, Q)
    data = np.array([0, 1, 2, 3, 4, 5, 6, 7], dtype=np.uint8)
    request = ShufflePhaseRequest(params, common, WorkerOrder.SECOND, NOISE, (data,))
    response = complete_reach_and_frequency_shuffle_phase(request, SeededRandomSource(3))
    shuffle_seed = bytes.fromhex(stream["shuffle_seed_hex"])
    unshuffle = np.argsort(secure_shuffle(np.arange(208), shuffle_seed))
    ordered = response.share_vector[unshuffle]
    assert ordered[:8].tolist() == data.tolist()
    rv1 = ordered[8:108]  # SECOND sends rv1 in the clear, then Z - rv2
    assert rv1[:5].tolist() == stream["rv1_head"]
    assert rv1[-5:].tolist() == stream["rv1_tail"]
    assert response.share_vector.size == 8 + 2 * 100
