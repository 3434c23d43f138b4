"""The protocol's constant points, hashed once per process (spec §1.2)."""

from __future__ import annotations

from functools import cache

from cmms.crypto import group

UNIT_SEED = b"unit_ec_point"
DESTROYED_KEY_SEED = b"destroyed_register_key"
BLINDED_HISTOGRAM_KEY_SEED = b"blinded_histogram_noise_register_key"
PUBLISHER_NOISE_ID_SEED = b"publisher_noise_register_id"
PADDING_NOISE_ID_SEED = b"padding_noise_register_id"

# Noise ids carry these prefixes so they never collide with the decimal of a real index or key.
BLINDED_HISTOGRAM_ID_PREFIX = "blinded_histogram_noise"
REACH_DP_ID_PREFIX = "reach_dp_noise"
RANDOM_COUNT_PREFIX = "random_count"


@cache
def unit_point() -> bytes:
    """P: a count c travels as c·P."""
    return group.hash_to_curve(UNIT_SEED)


@cache
def destroyed_key() -> bytes:
    """K_destroyed: key (and count) of flagged-destroyed registers."""
    return group.hash_to_curve(DESTROYED_KEY_SEED)


@cache
def blinded_histogram_key() -> bytes:
    """K_bh: key of blinded-histogram noise registers."""
    return group.hash_to_curve(BLINDED_HISTOGRAM_KEY_SEED)


@cache
def publisher_noise_id() -> bytes:
    """ID_pub: index of publisher-noise registers."""
    return group.hash_to_curve(PUBLISHER_NOISE_ID_SEED)


@cache
def padding_noise_id() -> bytes:
    """ID_pad: index of padding-noise registers."""
    return group.hash_to_curve(PADDING_NOISE_ID_SEED)


@cache
def unit_multiples(count: int) -> tuple[bytes, ...]:
    """`(1·P, 2·P, ..., count·P)`, built by repeated addition."""
    multiples: list[bytes] = []
    current = unit_point()
    for _ in range(count):
        multiples.append(current)
        current = group.point_add(current, unit_point())
    return tuple(multiples)


def random_point(prefix: str, scalar: int) -> bytes:
    """MapToCurve(prefix + decimal(scalar)): a fresh point nobody can predict."""
    return group.hash_to_curve(f"{prefix}{scalar}".encode())
