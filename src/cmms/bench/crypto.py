"""`cmms bench crypto`: µs/op of the P-256 and ElGamal primitives, as ratios to a calibration.

The calibration is a bare cffi loop of variable-base `EC_POINT_mul` (no wrapper, same scalar and
point every time), measured in the same run, so ratios are comparable across machines and load.
Every figure is the best of `repeats` timings of a batch of `iterations` operations.

ElGamal figures work on decoded batches (points in, points out), as protocol stages do; decoding
and encoding are reported on their own. `rerandomize_bytes` is the full bytes-to-bytes kernel.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cmms.crypto import elgamal, group
from cmms.crypto._openssl import ffi, lib
from cmms.crypto.randomness import SeededRandomSource

AES_BUFFER_BYTES = 1 << 20


@dataclass(frozen=True)
class Figure:
    """One measured operation."""

    name: str
    description: str
    us_per_op: float
    ratio: float  # us_per_op / calibration (for AES-CTR: µs per MiB / calibration)
    mb_per_s: float | None = None
    target: str | None = None
    met: bool | None = None


@dataclass(frozen=True)
class CryptoBenchReport:
    """All figures of one run."""

    iterations: int
    repeats: int
    calibration_us: float
    figures: list[Figure]

    def to_json(self) -> dict[str, object]:
        """A JSON-ready document: figures keyed by name."""
        return {
            "benchmark": "crypto",
            "iterations": self.iterations,
            "repeats": self.repeats,
            "calibration_us": self.calibration_us,
            "figures": {f.name: asdict(f) for f in self.figures},
        }


@dataclass
class _Task:
    name: str
    description: str
    run: Callable[[], object]
    operations: int
    best_seconds: float = float("inf")

    @property
    def us_per_op(self) -> float:
        return self.best_seconds * 1e6 / self.operations


def _time_once(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - start
    close = getattr(result, "close", None)
    if close is not None:
        close()  # freeing outputs is not part of the operation being timed
    return elapsed


def _round_robin(tasks: list[_Task], repeats: int) -> None:
    # Interleaving the repetitions spreads every task over the whole run, so a burst of load
    # from other processes cannot spoil all samples of one task while sparing another.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            for task in tasks:
                task.best_seconds = min(task.best_seconds, _time_once(task.run))
    finally:
        if gc_was_enabled:
            gc.enable()


def _calibration_task(iterations: int) -> _Task:
    state = group._state()
    grp, bn_ctx = state.group, state.bn_ctx
    point = ffi.gc(lib.EC_POINT_new(grp), lib.EC_POINT_free)
    result = ffi.gc(lib.EC_POINT_new(grp), lib.EC_POINT_free)
    scalar = ffi.gc(lib.BN_new(), lib.BN_free)
    lib.EC_POINT_oct2point(grp, point, group.hash_to_curve(b"calibration"), 33, bn_ctx)
    lib.BN_bin2bn((group.ORDER - 12345).to_bytes(32, "big"), 32, scalar)
    mul, null = lib.EC_POINT_mul, ffi.NULL

    def loop() -> None:
        for _ in range(iterations):
            mul(grp, result, null, point, scalar, bn_ctx)

    return _Task("calibration", "bare cffi EC_POINT_mul loop, variable base", loop, iterations)


def _aes_task() -> _Task:
    encryptor = Cipher(algorithms.AES(bytes(range(32))), modes.CTR(bytes(16))).encryptor()
    data = bytes(AES_BUFFER_BYTES)
    rounds = 8

    def run() -> None:
        for _ in range(rounds):
            encryptor.update(data)

    return _Task(
        "aes_ctr", "AES-256-CTR keystream via `cryptography` (us_per_op is per MiB)", run, rounds
    )


def _tasks(n: int, stack: ExitStack) -> list[_Task]:
    random = SeededRandomSource("cmms bench crypto")
    scalars = elgamal.random_scalars(random, n)
    messages_bytes = [str(i).encode() for i in range(n)]
    key = elgamal.PublicKey(group.hash_to_curve(b"bench public key"))
    key.table  # noqa: B018  (build the table outside the timings)
    table = group.FixedBaseTable(group.hash_to_curve(b"bench fixed base"))
    points = stack.enter_context(group.hash_to_points(messages_bytes))
    other_points = stack.enter_context(group.hash_to_points([m + b"'" for m in messages_bytes]))
    encoded = group.encode_points(points)
    cts = stack.enter_context(elgamal.encrypt(key, points, random))
    ct_bytes = elgamal.encode_ciphertexts(cts)
    secret = elgamal.random_scalars(random, 1)[0]

    def rerandomize_in_place() -> None:
        elgamal.rerandomize(cts, key, random, out=cts)

    def partial_decrypt_in_place() -> None:
        elgamal.partial_decrypt(cts, secret, out=cts)

    def rerandomize_bytes() -> bytes:
        with elgamal.decode_ciphertexts(ct_bytes) as batch:
            elgamal.rerandomize(batch, key, random, out=batch)
            return elgamal.encode_ciphertexts(batch)

    def task(name: str, description: str, run: Callable[[], object]) -> _Task:
        return _Task(name, description, run, n)

    return [
        task(
            "var_base_mult",
            "k_i * Q_i, one scalar per point (multiply_each)",
            lambda: group.multiply_each(points, scalars),
        ),
        task(
            "table_mult",
            "k_i * Y with a precomputed table for an arbitrary Y",
            lambda: table.multiply(scalars),
        ),
        task(
            "generator_mult",
            "k_i * G (OpenSSL's built-in table)",
            lambda: group.generator_table().multiply(scalars),
        ),
        task("decode", "33-byte compressed point to native", lambda: group.decode_points(encoded)),
        task("encode", "native point to 33 bytes", lambda: group.encode_points(points)),
        task("add", "P + Q", lambda: group.add(points, other_points)),
        task(
            "hash_to_curve",
            "PJC try-and-increment SHA-256, decimal-string inputs",
            lambda: [group.hash_to_curve(m) for m in messages_bytes],
        ),
        task(
            "elgamal_encrypt",
            "(r*G, M + r*Y) with G and Y tables, points in, points out",
            lambda: elgamal.encrypt(key, points, random),
        ),
        task("rerandomize", "(u + s*G, e + s*Y) with tables, in place", rerandomize_in_place),
        task("partial_decrypt", "(u, e - x*u), in place", partial_decrypt_in_place),
        task(
            "rerandomize_bytes",
            "decode 2 + rerandomize + encode 2 (66 bytes in, 66 out)",
            rerandomize_bytes,
        ),
    ]


def run_crypto_bench(iterations: int = 500, repeats: int = 15) -> CryptoBenchReport:
    """Measure every figure; `iterations` operations per timing, best of `repeats` timings."""
    with ExitStack() as stack:
        calibration_task = _calibration_task(iterations)
        tasks = _tasks(iterations, stack)
        aes = _aes_task()
        _round_robin([calibration_task, *tasks, aes], repeats)
    calibration = calibration_task.us_per_op
    timings = {t.name: t.us_per_op for t in tasks}
    var_base = timings["var_base_mult"]
    targets: dict[str, tuple[str, float]] = {
        "var_base_mult": ("<= 1.15x calibration", 1.15 * calibration),
        "table_mult": ("<= 0.25x var_base_mult", 0.25 * var_base),
        "elgamal_encrypt": ("<= 1.0x var_base_mult", var_base),
    }
    figures = []
    for t in tasks:
        target, limit = targets.get(t.name, (None, None))
        met = None if limit is None else t.us_per_op <= limit
        figures.append(
            Figure(t.name, t.description, t.us_per_op, t.us_per_op / calibration, None, target, met)
        )
    figures.append(
        Figure(
            aes.name,
            aes.description,
            aes.us_per_op,
            aes.us_per_op / calibration,
            mb_per_s=AES_BUFFER_BYTES / aes.us_per_op,
        )
    )
    return CryptoBenchReport(iterations, repeats, calibration, figures)


def format_table(report: CryptoBenchReport) -> str:
    """A plain-text table of the report."""
    lines = [
        f"calibration (bare cffi EC_POINT_mul, variable base): {report.calibration_us:.2f} µs",
        f"{'operation':<20} {'µs/op':>10} {'ratio':>7}  {'target':<24} met",
    ]
    for f in report.figures:
        value = f"{f.mb_per_s:.0f} MB/s" if f.mb_per_s is not None else f"{f.us_per_op:.2f}"
        met = "" if f.met is None else ("yes" if f.met else "NO")
        lines.append(f"{f.name:<20} {value:>10} {f.ratio:>7.3f}  {f.target or '':<24} {met}")
    return "\n".join(lines)
