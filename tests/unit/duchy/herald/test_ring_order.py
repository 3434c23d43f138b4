from __future__ import annotations

import hashlib
import itertools

import pytest

from cmms.duchy.herald.errors import HeraldError
from cmms.duchy.herald.ring_order import RingMember, ring_order, ring_sort_key


def test_sort_key_is_signed_sha1_of_lossy_utf8_key_and_computation_id() -> None:
    key = b"\xff\xfeabc"  # invalid UTF-8: each bad byte becomes U+FFFD
    digest = hashlib.sha1("\ufffd\ufffdabcGID".encode()).digest()
    assert ring_sort_key(key, "GID") == int.from_bytes(digest, "big", signed=True)


def test_signed_reading_puts_high_bit_digests_first() -> None:
    keys = [bytes([i]) * 4 for i in range(40)]
    ordered = sorted(keys, key=lambda k: ring_sort_key(k, "c"))
    first_digest = hashlib.sha1(ordered[0].decode("utf-8", "replace").encode() + b"c").digest()
    assert first_digest[0] >= 0x80  # negative numbers sort before positive ones


def test_aggregator_last_and_same_order_whatever_the_input_order() -> None:
    members = [RingMember(d, f"key of {d}".encode()) for d in ("w1", "w2", "w3", "agg")]
    orders = {
        tuple(m.duchy_id for m in ring_order(list(p), "agg", "gid"))
        for p in itertools.permutations(members)
    }
    assert len(orders) == 1
    (order,) = orders
    assert order[-1] == "agg"
    expected = sorted(
        ("w1", "w2", "w3"), key=lambda d: ring_sort_key(f"key of {d}".encode(), "gid")
    )
    assert list(order[:-1]) == expected


def test_missing_aggregator_is_an_error() -> None:
    with pytest.raises(HeraldError, match="aggregator"):
        ring_order([RingMember("w1", b"k")], "agg", "gid")
