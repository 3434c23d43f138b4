"""NIST P-256 on the system OpenSSL: batches of native points, fixed-base tables, hash-to-curve.

Points travel as 33-byte SEC1 compressed encodings. Protocol code decodes each point once per
stage into a `Points` batch of native handles, does all its arithmetic on the handles, and
encodes once. The identity is a legitimate value of a `Points` element (e.g. `P + (-P)`) but is
never encoded or decoded.

Scalars are Python ints in `[0, ORDER)`. Every batch operation takes an optional `out` batch of
the same length (which may be one of the inputs) to avoid allocating new native points.

Handles are neither picklable nor meant to cross processes: send bytes instead. The OpenSSL
group is created lazily in each process and the scratch state (BN_CTX, BIGNUMs) in each thread.
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from cmms.crypto._openssl import NID_P256, POINT_CONVERSION_COMPRESSED, ffi, lib
from cmms.crypto.errors import (
    IdentityPointError,
    InvalidLengthError,
    InvalidPointError,
    OutOfRangeError,
)

ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
FIELD_PRIME = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
CURVE_A = FIELD_PRIME - 3
CURVE_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
POINT_SIZE = 33
SCALAR_SIZE = 32
GENERATOR = bytes.fromhex("036b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296")


# ---------------------------------------------------------------------------------------------
# Per-process group and per-thread scratch state


class _ThreadState:
    """A BN_CTX and scratch values for one thread; BN_CTX is not thread-safe."""

    __slots__ = ("bn_ctx", "group", "scalar", "scratch_point")

    def __init__(self, group: Any) -> None:
        self.group = group
        self.bn_ctx = _checked(ffi.gc(lib.BN_CTX_new(), lib.BN_CTX_free), "BN_CTX_new")
        self.scalar = _checked(ffi.gc(lib.BN_new(), lib.BN_clear_free), "BN_new")
        self.scratch_point = _checked(
            ffi.gc(lib.EC_POINT_new(group), lib.EC_POINT_free), "EC_POINT_new"
        )


_process_group: Any = None
_generator_table: FixedBaseTable | None = None
_thread_local = threading.local()
_group_lock = threading.Lock()


def _checked(handle: Any, what: str) -> Any:
    if handle == ffi.NULL:
        raise MemoryError(f"OpenSSL {what} failed")
    return handle


def _new_group() -> Any:
    group = _checked(lib.EC_GROUP_new_by_curve_name(NID_P256), "EC_GROUP_new_by_curve_name")
    group = ffi.gc(group, lib.EC_GROUP_free)
    order = ffi.new("unsigned char[32]")
    lib.BN_bn2binpad(lib.EC_GROUP_get0_order(group), order, 32)
    if int.from_bytes(ffi.buffer(order), "big") != ORDER:
        raise RuntimeError("libcrypto's NID 415 is not P-256")
    return group


def _state() -> _ThreadState:
    state: _ThreadState | None = getattr(_thread_local, "state", None)
    if state is None:
        global _process_group
        with _group_lock:
            if _process_group is None:
                _process_group = _new_group()
        state = _ThreadState(_process_group)
        _thread_local.state = state
    return state


def _forget_parent_state() -> None:
    # The child must not share a BN_CTX another thread of the parent might have been using.
    global _process_group, _generator_table, _thread_local, _group_lock
    _process_group = None
    _generator_table = None
    _thread_local = threading.local()
    _group_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_parent_state)


def _raise_openssl(what: str) -> None:
    lib.ERR_clear_error()
    raise RuntimeError(f"OpenSSL {what} failed")


# ---------------------------------------------------------------------------------------------
# Batches


def _free_handles(handles: Any) -> None:
    free = lib.EC_POINT_free
    for handle in handles:
        free(handle)  # EC_POINT_free(NULL) is a no-op, so a half-filled batch is fine


class Points:
    """A batch of P-256 points held as native OpenSSL handles.

    Freed when the last reference goes, or at once by `close()` / leaving a `with` block.
    """

    __slots__ = ("__weakref__", "_count", "_finalizer", "_handles")

    def __init__(self, count: int) -> None:
        """`count` fresh points, all the identity."""
        if count < 0:
            raise OutOfRangeError(f"batch size must be non-negative, got {count}")
        group = _state().group
        handles = ffi.new("EC_POINT *[]", count)
        self._handles = handles
        self._count = count
        self._finalizer = weakref.finalize(self, _free_handles, handles)
        self._finalizer.atexit = False
        new = lib.EC_POINT_new
        for i in range(count):
            handle = new(group)
            if handle == ffi.NULL:
                self.close()
                raise MemoryError(f"EC_POINT_new failed after {i} of {count} points")
            handles[i] = handle

    @classmethod
    def identities(cls, count: int) -> Points:
        """`count` copies of the identity."""
        return cls(count)

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"Points({self._count})"

    def close(self) -> None:
        """Free the native points now; the batch is empty afterwards."""
        self._finalizer()
        self._handles = ffi.new("EC_POINT *[]", 0)
        self._count = 0

    def __enter__(self) -> Points:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __reduce__(self) -> Any:
        raise TypeError("Points hold native handles; encode them to bytes to send elsewhere")

    def is_identity(self) -> list[bool]:
        """For each point, whether it is the identity."""
        group = _state().group
        at_infinity = lib.EC_POINT_is_at_infinity
        return [at_infinity(group, h) == 1 for h in self._handles]

    def copy(self) -> Points:
        """An independent copy of the batch."""
        return copy(self)

    def take(self, indices: Iterable[int]) -> Points:
        """A new batch with copies of the points at `indices`, in that order."""
        picked = list(indices)
        for i in picked:
            if not 0 <= i < self._count:
                raise OutOfRangeError(f"index {i} outside a batch of {self._count}")
        result = Points(len(picked))
        copy = lib.EC_POINT_copy
        handles = self._handles
        for dst, i in zip(result._handles, picked, strict=True):
            if not copy(dst, handles[i]):
                _raise_openssl("EC_POINT_copy")
        return result

    @staticmethod
    def concat(batches: Sequence[Points]) -> Points:
        """A new batch with copies of all points of `batches`, in order."""
        result = Points(sum(len(b) for b in batches))
        copy = lib.EC_POINT_copy
        targets = iter(result._handles)
        for batch in batches:
            for src, dst in zip(batch._handles, targets, strict=False):
                if not copy(dst, src):
                    _raise_openssl("EC_POINT_copy")
        return result


def _output(count: int, out: Points | None) -> Points:
    if out is None:
        return Points(count)
    if len(out) != count:
        raise InvalidLengthError(f"out batch has {len(out)} points, expected {count}")
    return out


def _same_length(a: Points, b: Points) -> int:
    if len(a) != len(b):
        raise InvalidLengthError(f"batches differ in length: {len(a)} and {len(b)}")
    return len(a)


def _check_scalar(k: int) -> None:
    if not 0 <= k < ORDER:
        raise OutOfRangeError(f"scalar must be in [0, n), got {k:#x}")


def _check_scalars(scalars: Sequence[int]) -> None:
    if scalars and (min(scalars) < 0 or max(scalars) >= ORDER):
        bad = next(k for k in scalars if not 0 <= k < ORDER)
        raise OutOfRangeError(f"scalar must be in [0, n), got {bad:#x}")


# ---------------------------------------------------------------------------------------------
# Encoding


def _bad_encoding(block: bytes, index: int) -> Exception:
    where = f"point {index}"
    if not any(block):
        return IdentityPointError(f"{where}: all-zero bytes encode the identity, never allowed")
    if block[0] not in (2, 3):
        return InvalidPointError(f"{where}: prefix {block[0]:#04x} is not 0x02/0x03 (compressed)")
    if int.from_bytes(block[1:], "big") >= FIELD_PRIME:
        return InvalidPointError(f"{where}: x coordinate is not below the field prime")
    return InvalidPointError(f"{where}: x coordinate of no point on P-256")


def _layout(length: int, offset: int, stride: int) -> int:
    if stride < POINT_SIZE or not 0 <= offset <= stride - POINT_SIZE:
        raise OutOfRangeError(f"offset {offset} / stride {stride} do not fit a 33-byte point")
    if length % stride:
        raise InvalidLengthError(f"{length} bytes is not a multiple of {stride}")
    return length // stride


def decode_points(
    buf: bytes | bytearray | memoryview, *, offset: int = 0, stride: int = POINT_SIZE
) -> Points:
    """Decode compressed points, validating each (on the curve, not the identity).

    With the defaults `buf` is a plain concatenation of 33-byte points. With `stride`, one point is
    read at `offset` within each `stride`-byte record (e.g. `stride=66, offset=33` reads the `e`
    halves of ElGamal ciphertexts).
    """
    count = _layout(len(buf), offset, stride)
    state = _state()
    group, bn_ctx = state.group, state.bn_ctx
    result = Points(count)
    if count == 0:
        return result
    source = ffi.from_buffer(buf)
    oct2point = lib.EC_POINT_oct2point
    position = offset
    for i, handle in enumerate(result._handles):
        if not oct2point(group, handle, source + position, POINT_SIZE, bn_ctx):
            lib.ERR_clear_error()
            result.close()
            raise _bad_encoding(bytes(buf[position : position + POINT_SIZE]), i)
        position += stride
    return result


def encode_points_into(
    points: Points, out: bytearray | memoryview, *, offset: int = 0, stride: int = POINT_SIZE
) -> None:
    """Write compressed points into `out` at `offset` within each `stride`-byte record."""
    count = _layout(len(out), offset, stride)
    if count != len(points):
        raise InvalidLengthError(f"{len(out)} bytes hold {count} records, got {len(points)} points")
    if count == 0:
        return
    state = _state()
    group, bn_ctx = state.group, state.bn_ctx
    target = ffi.from_buffer(out, require_writable=True)
    point2oct = lib.EC_POINT_point2oct
    position = offset
    for i, handle in enumerate(points._handles):
        written = point2oct(
            group, handle, POINT_CONVERSION_COMPRESSED, target + position, POINT_SIZE, bn_ctx
        )
        if written != POINT_SIZE:
            lib.ERR_clear_error()
            raise IdentityPointError(f"point {i} is the identity, which is never serialised")
        position += stride


def encode_points(points: Points) -> bytes:
    """The compressed encodings of all points, concatenated; the identity is refused."""
    out = bytearray(POINT_SIZE * len(points))
    encode_points_into(points, out)
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Arithmetic


def add(a: Points, b: Points, *, out: Points | None = None) -> Points:
    """Elementwise `a + b`."""
    result = _output(_same_length(a, b), out)
    state = _state()
    group, bn_ctx = state.group, state.bn_ctx
    point_add = lib.EC_POINT_add
    for r, x, y in zip(result._handles, a._handles, b._handles, strict=True):
        if not point_add(group, r, x, y, bn_ctx):
            _raise_openssl("EC_POINT_add")
    return result


def subtract(a: Points, b: Points, *, out: Points | None = None) -> Points:
    """Elementwise `a - b`."""
    result = _output(_same_length(a, b), out)
    state = _state()
    group, bn_ctx, negated = state.group, state.bn_ctx, state.scratch_point
    copy, invert, point_add = lib.EC_POINT_copy, lib.EC_POINT_invert, lib.EC_POINT_add
    for r, x, y in zip(result._handles, a._handles, b._handles, strict=True):
        if not (
            copy(negated, y)
            and invert(group, negated, bn_ctx)
            and point_add(group, r, x, negated, bn_ctx)
        ):
            _raise_openssl("point subtraction")
    return result


def negate(a: Points, *, out: Points | None = None) -> Points:
    """Elementwise `-a`."""
    result = _output(len(a), out)
    state = _state()
    group, bn_ctx = state.group, state.bn_ctx
    copy, invert = lib.EC_POINT_copy, lib.EC_POINT_invert
    for r, x in zip(result._handles, a._handles, strict=True):
        if not (copy(r, x) and invert(group, r, bn_ctx)):
            _raise_openssl("EC_POINT_invert")
    return result


def copy(points: Points, *, out: Points | None = None) -> Points:
    """Elementwise copy (into `out` if given)."""
    result = _output(len(points), out)
    point_copy = lib.EC_POINT_copy
    for r, x in zip(result._handles, points._handles, strict=True):
        if not point_copy(r, x):
            _raise_openssl("EC_POINT_copy")
    return result


def equal(a: Points, b: Points) -> list[bool]:
    """Elementwise point equality."""
    _same_length(a, b)
    state = _state()
    group, bn_ctx = state.group, state.bn_ctx
    cmp = lib.EC_POINT_cmp
    return [cmp(group, x, y, bn_ctx) == 0 for x, y in zip(a._handles, b._handles, strict=True)]


def multiply(points: Points, scalar: int, *, out: Points | None = None) -> Points:
    """Elementwise `scalar * point`, one scalar for the whole batch (variable base)."""
    _check_scalar(scalar)
    result = _output(len(points), out)
    state = _state()
    group, bn_ctx, k = state.group, state.bn_ctx, state.scalar
    lib.BN_bin2bn(scalar.to_bytes(SCALAR_SIZE, "big"), SCALAR_SIZE, k)
    mul, null = lib.EC_POINT_mul, ffi.NULL
    for r, q in zip(result._handles, points._handles, strict=True):
        if not mul(group, r, null, q, k, bn_ctx):
            _raise_openssl("EC_POINT_mul")
    return result


def multiply_each(points: Points, scalars: Sequence[int], *, out: Points | None = None) -> Points:
    """Elementwise `scalars[i] * points[i]` (variable base)."""
    if len(scalars) != len(points):
        raise InvalidLengthError(f"{len(scalars)} scalars for {len(points)} points")
    _check_scalars(scalars)
    result = _output(len(points), out)
    state = _state()
    group, bn_ctx, k = state.group, state.bn_ctx, state.scalar
    mul, bin2bn, null = lib.EC_POINT_mul, lib.BN_bin2bn, ffi.NULL
    for r, q, scalar in zip(result._handles, points._handles, scalars, strict=True):
        bin2bn(scalar.to_bytes(SCALAR_SIZE, "big"), SCALAR_SIZE, k)
        if not mul(group, r, null, q, k, bn_ctx):
            _raise_openssl("EC_POINT_mul")
    return result


# Deprecated in OpenSSL 3 (still exported); if a build drops it, tables fall back to var-base.
_precompute_mult: Any = getattr(lib, "EC_GROUP_precompute_mult", None)


class FixedBaseTable:
    """Precomputed multiples of one base point, making `k * base` about 5x cheaper.

    Built with OpenSSL's own precomputation on a copy of the group whose generator is `base`
    (about 20 ms). Pickling sends only the base; the receiving process rebuilds the table.
    """

    __slots__ = ("_base", "_fallback_base", "_group")

    def __init__(self, base: bytes) -> None:
        """Build the table for the compressed point `base` (not the identity)."""
        if len(base) != POINT_SIZE:
            raise InvalidLengthError(f"a base point is {POINT_SIZE} bytes, got {len(base)}")
        self._base = bytes(base)
        self._fallback_base: Points | None = None
        state = _state()
        with decode_points(self._base) as point:
            if self._base == GENERATOR:
                # OpenSSL ships a static table for the standard generator.
                self._group = state.group
                return
            group = ffi.gc(
                _checked(lib.EC_GROUP_dup(state.group), "EC_GROUP_dup"), lib.EC_GROUP_free
            )
            order = lib.EC_GROUP_get0_order(state.group)
            cofactor = lib.EC_GROUP_get0_cofactor(state.group)
            if not lib.EC_GROUP_set_generator(group, point._handles[0], order, cofactor):
                _raise_openssl("EC_GROUP_set_generator")
            self._group = group
            if _precompute_mult is None:
                self._fallback_base = point.copy()
                return
            if not _precompute_mult(group, state.bn_ctx):
                _raise_openssl("EC_GROUP_precompute_mult")

    @property
    def base(self) -> bytes:
        """The compressed base point."""
        return self._base

    def __reduce__(self) -> Any:
        return (FixedBaseTable, (self._base,))

    def multiply(self, scalars: Sequence[int], *, out: Points | None = None) -> Points:
        """`scalars[i] * base` for every i."""
        if self._fallback_base is not None:
            with Points(len(scalars)) as bases:
                for handle in bases._handles:
                    lib.EC_POINT_copy(handle, self._fallback_base._handles[0])
                return multiply_each(bases, scalars, out=out)
        _check_scalars(scalars)
        result = _output(len(scalars), out)
        state = _state()
        table, bn_ctx, k = self._group, state.bn_ctx, state.scalar
        mul, bin2bn, null = lib.EC_POINT_mul, lib.BN_bin2bn, ffi.NULL
        for r, scalar in zip(result._handles, scalars, strict=True):
            bin2bn(scalar.to_bytes(SCALAR_SIZE, "big"), SCALAR_SIZE, k)
            if not mul(table, r, k, null, null, bn_ctx):
                _raise_openssl("EC_POINT_mul")
        return result

    def multiply_one(self, scalar: int) -> bytes:
        """`scalar * base`, encoded (so `scalar` must not be 0)."""
        with self.multiply([scalar]) as product:
            return encode_points(product)


def generator_table() -> FixedBaseTable:
    """The fixed-base table of the standard generator G (one per process)."""
    global _generator_table
    table = _generator_table
    if table is None:
        table = _generator_table = FixedBaseTable(GENERATOR)
    return table


# ---------------------------------------------------------------------------------------------
# Hash-to-curve (PJC try-and-increment with SHA-256, spec/llv2.md §1.2)


def _random_oracle(message: bytes) -> int:
    # 512 bits of SHA-256 output reduced mod p (bitlen(p) = 256, so two counter blocks).
    high = hashlib.sha256(b"\x01" + message).digest()
    low = hashlib.sha256(b"\x02" + message).digest()
    return int.from_bytes(high + low, "big") % FIELD_PRIME


def _hash_into(message: bytes, handle: Any, group: Any, bn_ctx: Any) -> bytes:
    # Decoding 0x02 || x succeeds exactly when x^3 - 3x + b is a square (never 0 on P-256, whose
    # order is odd), and then yields the root with even y: the spec's choice, at OpenSSL speed.
    oct2point = lib.EC_POINT_oct2point
    x = _random_oracle(message)
    while True:
        candidate = b"\x02" + x.to_bytes(32, "big")
        if oct2point(group, handle, candidate, POINT_SIZE, bn_ctx):
            return candidate
        lib.ERR_clear_error()
        x = _random_oracle(x.to_bytes((x.bit_length() + 7) // 8, "big"))


def hash_to_curve(data: bytes) -> bytes:
    """Map `data` to a P-256 point (PJC SHA-256 try-and-increment); 33 compressed bytes."""
    state = _state()
    return _hash_into(bytes(data), state.scratch_point, state.group, state.bn_ctx)


def hash_to_points(messages: Sequence[bytes]) -> Points:
    """`hash_to_curve` of every message, as a batch of native points."""
    state = _state()
    result = Points(len(messages))
    for handle, message in zip(result._handles, messages, strict=True):
        _hash_into(bytes(message), handle, state.group, state.bn_ctx)
    return result


# ---------------------------------------------------------------------------------------------
# Single-point conveniences (each costs a few µs of batch overhead; use batches in hot loops)


def is_valid_point(encoded: bytes) -> bool:
    """Whether `encoded` is a 33-byte compressed point on P-256 (never the identity)."""
    if len(encoded) != POINT_SIZE:
        return False
    try:
        decode_points(encoded).close()
    except (InvalidPointError, IdentityPointError):
        return False
    return True


def _single(encoded: bytes) -> Points:
    if len(encoded) != POINT_SIZE:
        raise InvalidLengthError(f"a point is {POINT_SIZE} bytes, got {len(encoded)}")
    return decode_points(encoded)


def point_add(a: bytes, b: bytes) -> bytes:
    """`a + b`; raises IdentityPointError if the sum is the identity."""
    with _single(a) as x, _single(b) as y, add(x, y) as total:
        return encode_points(total)


def point_subtract(a: bytes, b: bytes) -> bytes:
    """`a - b`; raises IdentityPointError if the difference is the identity."""
    with _single(a) as x, _single(b) as y, subtract(x, y) as difference:
        return encode_points(difference)


def point_negate(a: bytes) -> bytes:
    """`-a`."""
    with _single(a) as x, negate(x) as negated:
        return encode_points(negated)


def point_multiply(point: bytes, scalar: int) -> bytes:
    """`scalar * point` (variable base); `scalar` in `[1, n)`."""
    with _single(point) as q, multiply(q, scalar) as product:
        return encode_points(product)


def base_multiply(scalar: int) -> bytes:
    """`scalar * G`; `scalar` in `[1, n)`."""
    return generator_table().multiply_one(scalar)


def sum_points(encoded: Sequence[bytes]) -> bytes:
    """The sum of one or more compressed points; raises IdentityPointError if it is the identity."""
    if not encoded:
        raise InvalidLengthError("cannot sum an empty list of points")
    with decode_points(b"".join(_check_length(p) for p in encoded)) as points, Points(1) as total:
        state = _state()
        point_add = lib.EC_POINT_add
        acc = total._handles[0]
        for handle in points._handles:
            if not point_add(state.group, acc, acc, handle, state.bn_ctx):
                _raise_openssl("EC_POINT_add")
        return encode_points(total)


def _check_length(encoded: bytes) -> bytes:
    if len(encoded) != POINT_SIZE:
        raise InvalidLengthError(f"a point is {POINT_SIZE} bytes, got {len(encoded)}")
    return encoded
