"""Additive sharing mod q: D.1 vectors, the §A.4 end-to-end seed shares, recombination."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmms.crypto.errors import InvalidLengthError, OutOfRangeError
from cmms.crypto.prng import AesCtrPrng, secure_shuffle
from cmms.crypto.sharing import (
    add_mod,
    as_ring_vector,
    combine,
    expand_seed_share,
    split,
    sub_mod,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "hmss_prng.json").read_text()
)


def test_d1_sub_and_add() -> None:
    sub, add = VECTORS["sharing_d1"]["sub"], VECTORS["sharing_d1"]["add"]
    assert sub_mod(sub["a"], sub["b"], sub["q"]).tolist() == sub["result"]
    assert add_mod(add["a"], add["b"], add["q"]).tolist() == add["result"]


def test_out_of_range_and_length_mismatch() -> None:
    with pytest.raises(OutOfRangeError, match="8"):
        add_mod([1, 8], [1, 1], 8)
    with pytest.raises(OutOfRangeError):
        sub_mod([1, 1], [1, -1], 8)
    with pytest.raises(InvalidLengthError):
        add_mod([1, 2, 3], [1, 2], 8)
    with pytest.raises(OutOfRangeError):
        as_ring_vector([1], 1)
    with pytest.raises(InvalidLengthError):
        expand_seed_share(b"x" * 47, 3, 127)
    with pytest.raises(InvalidLengthError):
        combine([], 127)


def test_uint8_storage_for_small_moduli() -> None:
    assert add_mod([1], [2], 127).dtype == np.uint8
    assert add_mod([255], [255], 256).tolist() == [254]
    assert add_mod([1], [2], 257).dtype == np.uint16


def test_end_to_end_seed_shares_and_worker_outputs() -> None:
    case = VECTORS["end_to_end"]
    q = case["q"]
    edp_a, edp_b = case["edp_a"], case["edp_b"]
    seed_a, seed_b = bytes([edp_a["seed_byte"]]) * 48, bytes([edp_b["seed_byte"]]) * 48
    assert expand_seed_share(seed_a, 8, q).tolist() == edp_a["seed_share"]
    assert expand_seed_share(seed_b, 8, q).tolist() == edp_b["seed_share"]

    # A's data share goes to W1, B's to W2; each worker expands the other EDP's seed.
    w1 = combine([split(edp_a["vector"], q, seed_a), expand_seed_share(seed_b, 8, q)], q)
    w2 = combine([expand_seed_share(seed_a, 8, q), split(edp_b["vector"], q, seed_b)], q)
    assert w1.tolist() == case["w1_pre_shuffle"]
    assert w2.tolist() == case["w2_pre_shuffle"]

    common_seed = bytes([case["common_seed_byte"]]) * 48
    shuffle_seed = AesCtrPrng(common_seed).random_bytes(48)
    w1_out, w2_out = secure_shuffle(w1, shuffle_seed), secure_shuffle(w2, shuffle_seed)
    assert w1_out.tolist() == case["rf_w1_out"]
    assert w2_out.tolist() == case["rf_w2_out"]
    assert add_mod(w1_out, w2_out, q).tolist() == case["rf_sum"]

    prng = AesCtrPrng(common_seed)
    multiplier = prng.nonzero_uniform_range(8, q)
    assert multiplier.tolist() == case["reach_multiplier"]
    shuffle_seed = prng.random_bytes(48)
    blinded = [(w.astype(np.int64) * multiplier) % q for w in (w1, w2)]
    reach_outs = [secure_shuffle(b, shuffle_seed) for b in blinded]
    assert reach_outs[0].tolist() == case["reach_w1_out"]
    assert reach_outs[1].tolist() == case["reach_w2_out"]
    assert add_mod(reach_outs[0], reach_outs[1], q).tolist() == case["reach_sum"]


@settings(max_examples=80, deadline=None)
@given(
    st.integers(min_value=2, max_value=2**32),
    st.lists(st.integers(min_value=0, max_value=2**32 - 1), max_size=60),
    st.binary(min_size=48, max_size=48),
)
def test_shares_recombine(q: int, raw: list[int], seed: bytes) -> None:
    vector = [value % q for value in raw]
    data_share = split(vector, q, seed)
    seed_share = expand_seed_share(seed, len(vector), q)
    assert combine([seed_share, data_share], q).tolist() == vector
    assert sub_mod(add_mod(vector, seed_share, q), seed_share, q).tolist() == vector
