"""HMSS SHUFFLE_PHASE on one worker (spec §A.3, pitfalls 2, 4, 5, 7).

The worker sums its shares mod q, (reach-only) multiplies each register by a common random
non-zero value, appends its half of the secret-shared noise registers and shuffles with a seed
drawn from the common PRNG. Draws on the common PRNG keyed by `own seed XOR peer seed` come in the
reference's order, so both workers (and reference workers) stay in step: R&F `rv1, rv2` (noise
only), shuffle seed; reach-only `r`, `rv1, rv2` (noise only), shuffle seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from cmms.crypto.errors import CryptoError
from cmms.crypto.prng import SEED_LENGTH, AesCtrPrng, secure_shuffle_in_place
from cmms.crypto.randomness import RandomSource
from cmms.crypto.ring import ring_dtype
from cmms.crypto.sharing import add_mod, as_ring_vector, expand_seed_share, sub_mod
from cmms.protocols.errors import InvalidProtocolInputError
from cmms.protocols.hmss.noise import (
    blind_histogram_noiser,
    reach_and_frequency_noise,
    reach_only_noise,
)
from cmms.protocols.hmss.parameters import FrequencyVectorParams, NoiseConfig, is_prime


class WorkerOrder(IntEnum):
    """Which half of the noise layout a worker writes (FIRST: `Z-rv1 || rv2`, SECOND: `rv1 || Z-rv2`)."""

    FIRST = 1
    SECOND = 2


@dataclass(frozen=True, eq=False)
class ShufflePhaseRequest:
    """Everything one worker needs: its data shares (vectors) and seed shares (48-byte seeds)."""

    params: FrequencyVectorParams
    common_random_seed: bytes
    order: WorkerOrder
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    data_shares: tuple[np.ndarray, ...] = ()
    seed_shares: tuple[bytes, ...] = ()


@dataclass(frozen=True, eq=False)
class ShufflePhaseResponse:
    """The shuffled share vector for the aggregator: N data registers then 2T noise registers."""

    share_vector: np.ndarray


def combine_worker_seeds(own_seed: bytes, peer_seed: bytes) -> bytes:
    """The common random seed, byte-wise `own XOR peer`; both must be 48 bytes."""
    for name, seed in (("own", own_seed), ("peer", peer_seed)):
        if len(seed) != SEED_LENGTH:
            raise InvalidProtocolInputError(
                f"{name} random seed must be {SEED_LENGTH} bytes, got {len(seed)}"
            )
    return bytes(a ^ b for a, b in zip(own_seed, peer_seed, strict=True))


def complete_reach_and_frequency_shuffle_phase(
    request: ShufflePhaseRequest, source: RandomSource
) -> ShufflePhaseResponse:
    """R&F: `Σ shares`, noise layout, shuffle. `source` feeds only this worker's private noise."""
    combined = _sum_shares(request)
    prng = _common_prng(request)
    if request.noise.enabled:
        reach_privacy = request.noise.reach
        frequency_privacy = request.noise.require_frequency()
        assert reach_privacy is not None and frequency_privacy is not None  # checked by NoiseConfig
        noise = reach_and_frequency_noise(
            blind_histogram_noiser(reach_privacy, request.noise.mechanism),
            blind_histogram_noiser(frequency_privacy, request.noise.mechanism),
            request.params.maximum_combined_frequency,
            request.params.ring_modulus,
            source,
        )
        combined = np.concatenate([combined, _noise_halves(noise, prng, request)])
    return ShufflePhaseResponse(_shuffle(combined, prng))


def complete_reach_only_shuffle_phase(
    request: ShufflePhaseRequest, source: RandomSource
) -> ShufflePhaseResponse:
    """Reach-only: prime q, `Σ shares · r` with common non-zero `r`, noise after, shuffle."""
    q = request.params.ring_modulus
    if not is_prime(q):
        raise InvalidProtocolInputError(f"reach-only ring modulus must be prime, got {q}")
    combined = _sum_shares(request)
    prng = _common_prng(request)
    multipliers = prng.nonzero_uniform_range(combined.size, q)
    combined = _multiply_mod(combined, multipliers, q)
    if request.noise.enabled:
        assert request.noise.reach is not None  # checked by NoiseConfig
        noise = reach_only_noise(
            blind_histogram_noiser(request.noise.reach, request.noise.mechanism), q, source
        )
        combined = np.concatenate([combined, _noise_halves(noise, prng, request)])
    return ShufflePhaseResponse(_shuffle(combined, prng))


def _sum_shares(request: ShufflePhaseRequest) -> np.ndarray:
    params = request.params
    n, q = params.register_count, params.ring_modulus
    if not request.data_shares and not request.seed_shares:
        raise InvalidProtocolInputError("the shuffle phase needs at least one share")
    total: np.ndarray | None = None
    for index, share in enumerate(request.data_shares):
        vector = _checked_data_share(share, index, n, q)
        total = vector if total is None else add_mod(total, vector, q)
    for index, seed in enumerate(request.seed_shares):
        if len(seed) != SEED_LENGTH:
            raise InvalidProtocolInputError(
                f"seed share {index} must be {SEED_LENGTH} bytes, got {len(seed)}"
            )
        expanded = expand_seed_share(seed, n, q)
        total = expanded if total is None else add_mod(total, expanded, q)
    assert total is not None
    if len(request.data_shares) == 1 and not request.seed_shares:
        total = np.array(total)  # the caller's vector itself: take a copy to shuffle in place
    return total


def _checked_data_share(share: np.ndarray, index: int, n: int, q: int) -> np.ndarray:
    if share.ndim != 1 or share.size != n:
        raise InvalidProtocolInputError(
            f"data share {index} has {share.size} registers, the register count is {n}"
        )
    try:
        return as_ring_vector(share, q, f"data share {index}")
    except CryptoError as error:
        raise InvalidProtocolInputError(str(error)) from error


def _common_prng(request: ShufflePhaseRequest) -> AesCtrPrng:
    if len(request.common_random_seed) != SEED_LENGTH:
        raise InvalidProtocolInputError(
            f"common random seed must be {SEED_LENGTH} bytes, got {len(request.common_random_seed)}"
        )
    return AesCtrPrng(request.common_random_seed)


def _noise_halves(noise: np.ndarray, prng: AesCtrPrng, request: ShufflePhaseRequest) -> np.ndarray:
    if not isinstance(request.order, WorkerOrder):
        raise InvalidProtocolInputError(
            f"worker order must be FIRST or SECOND, got {request.order}"
        )
    q = request.params.ring_modulus
    mask_first = prng.uniform_range(noise.size, q)
    mask_second = prng.uniform_range(noise.size, q)
    if request.order is WorkerOrder.FIRST:
        return np.concatenate([sub_mod(noise, mask_first, q), mask_second])
    return np.concatenate([mask_first, sub_mod(noise, mask_second, q)])


def _multiply_mod(values: np.ndarray, multipliers: np.ndarray, q: int) -> np.ndarray:
    # The narrowest type holding (q-1)^2: uint16 for q <= 256, so the product pass stays cheap.
    work = np.uint16 if q <= 256 else np.uint32 if q <= 2**16 else np.uint64
    product = values.astype(work) * multipliers.astype(work)
    product %= work(q)
    reduced: np.ndarray = product.astype(ring_dtype(q))
    return reduced


def _shuffle(values: np.ndarray, prng: AesCtrPrng) -> np.ndarray:
    # `values` is always an array this stage allocated, so it may be shuffled in place.
    return secure_shuffle_in_place(values, prng.random_bytes(SEED_LENGTH))
