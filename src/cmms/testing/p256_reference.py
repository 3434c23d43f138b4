"""A slow, obviously-correct P-256 in pure Python, used by tests to check the OpenSSL backend.

Points are affine `(x, y)` tuples or `None` for the identity. Scalar multiplication uses Jacobian
coordinates internally so that a test multiplication costs milliseconds rather than seconds.
Not constant time; never use it for secrets.
"""

from __future__ import annotations

import hashlib

P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
A = P - 3
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5

AffinePoint = tuple[int, int] | None
G: AffinePoint = (GX, GY)

_Jacobian = tuple[int, int, int]  # (X, Y, Z) with x = X/Z^2, y = Y/Z^3; Z = 0 is the identity
_JACOBIAN_IDENTITY: _Jacobian = (1, 1, 0)


def is_on_curve(point: AffinePoint) -> bool:
    """Whether `point` satisfies y^2 = x^3 - 3x + b (the identity counts as on the curve)."""
    if point is None:
        return True
    x, y = point
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


def negate(point: AffinePoint) -> AffinePoint:
    """`-point`."""
    if point is None:
        return None
    x, y = point
    return (x, (-y) % P)


def add(p1: AffinePoint, p2: AffinePoint) -> AffinePoint:
    """`p1 + p2` with the textbook affine chord-and-tangent formulas."""
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    x1, y1 = p1
    x2, y2 = p2
    if x1 == x2:
        if (y1 + y2) % P == 0:
            return None
        slope = (3 * x1 * x1 + A) * pow(2 * y1, -1, P) % P
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (slope * slope - x1 - x2) % P
    return (x3, (slope * (x1 - x3) - y1) % P)


def _to_jacobian(point: AffinePoint) -> _Jacobian:
    return _JACOBIAN_IDENTITY if point is None else (point[0], point[1], 1)


def _from_jacobian(point: _Jacobian) -> AffinePoint:
    x, y, z = point
    if z == 0:
        return None
    z_inv = pow(z, -1, P)
    z_inv2 = z_inv * z_inv % P
    return (x * z_inv2 % P, y * z_inv2 * z_inv % P)


def _jacobian_double(point: _Jacobian) -> _Jacobian:
    x, y, z = point
    if z == 0 or y == 0:
        return _JACOBIAN_IDENTITY
    yy = y * y % P
    s = 4 * x * yy % P
    zz = z * z % P
    m = 3 * (x - zz) * (x + zz) % P  # a = -3
    x3 = (m * m - 2 * s) % P
    return (x3, (m * (s - x3) - 8 * yy * yy) % P, 2 * y * z % P)


def _jacobian_add(p1: _Jacobian, p2: _Jacobian) -> _Jacobian:
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    if z1 == 0:
        return p2
    if z2 == 0:
        return p1
    z1z1 = z1 * z1 % P
    z2z2 = z2 * z2 % P
    u1 = x1 * z2z2 % P
    u2 = x2 * z1z1 % P
    s1 = y1 * z2 * z2z2 % P
    s2 = y2 * z1 * z1z1 % P
    if u1 == u2:
        return _jacobian_double(p1) if s1 == s2 else _JACOBIAN_IDENTITY
    h = (u2 - u1) % P
    r = (s2 - s1) % P
    hh = h * h % P
    hhh = h * hh % P
    v = u1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    return (x3, (r * (v - x3) - s1 * hhh) % P, z1 * z2 * h % P)


def multiply(point: AffinePoint, scalar: int) -> AffinePoint:
    """`scalar * point` by left-to-right double-and-add (any integer scalar, reduced mod n)."""
    k = scalar % N
    base = _to_jacobian(point)
    acc = _JACOBIAN_IDENTITY
    for bit in bin(k)[2:] if k else "":
        acc = _jacobian_double(acc)
        if bit == "1":
            acc = _jacobian_add(acc, base)
    return _from_jacobian(acc)


def sqrt_mod_p(value: int) -> int | None:
    """A square root mod p, or None if there is none (p = 3 mod 4)."""
    root = pow(value, (P + 1) // 4, P)
    return root if root * root % P == value % P else None


def encode(point: AffinePoint) -> bytes:
    """SEC1 compressed encoding; the identity has none."""
    if point is None:
        raise ValueError("the identity has no compressed encoding")
    x, y = point
    return bytes([2 + (y & 1)]) + x.to_bytes(32, "big")


def decode(data: bytes) -> AffinePoint:
    """Parse a 33-byte compressed point; ValueError if it is not one."""
    if len(data) != 33 or data[0] not in (2, 3):
        raise ValueError("not a 33-byte compressed point")
    x = int.from_bytes(data[1:], "big")
    if x >= P:
        raise ValueError("x is not below p")
    y = sqrt_mod_p((x * x * x + A * x + B) % P)
    if y is None:
        raise ValueError("x is not the x-coordinate of a curve point")
    if y & 1 != data[0] & 1:
        y = P - y
    return (x, y)


def _random_oracle(message: bytes) -> int:
    digest = hashlib.sha256(b"\x01" + message).digest() + hashlib.sha256(b"\x02" + message).digest()
    return int.from_bytes(digest, "big") % P


def hash_to_curve(data: bytes) -> AffinePoint:
    """Try-and-increment SHA-256 map (spec/llv2.md §1.2), with an explicit Legendre test."""
    x = _random_oracle(data)
    while True:
        y2 = (x * x * x + A * x + B) % P
        if pow(y2, (P - 1) // 2, P) == 1:
            y = sqrt_mod_p(y2)
            assert y is not None
            return (x, y if y % 2 == 0 else P - y)
        x = _random_oracle(x.to_bytes((x.bit_length() + 7) // 8, "big"))


def hash_to_curve_tries(data: bytes) -> int:
    """How many oracle outputs `hash_to_curve(data)` examined."""
    x = _random_oracle(data)
    tries = 1
    while pow((x * x * x + A * x + B) % P, (P - 1) // 2, P) != 1:
        x = _random_oracle(x.to_bytes((x.bit_length() + 7) // 8, "big"))
        tries += 1
    return tries
