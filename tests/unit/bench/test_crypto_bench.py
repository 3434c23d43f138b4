"""The crypto benchmark harness: targets are judged against the right reference figures."""

from __future__ import annotations

from cmms.bench.crypto import run_crypto_bench


def test_targets_follow_their_definitions() -> None:
    report = run_crypto_bench(iterations=2, repeats=1)
    figures = {f.name: f for f in report.figures}
    var_base = figures["var_base_mult"].us_per_op
    assert figures["var_base_mult"].met == (var_base <= 1.15 * report.calibration_us)
    assert figures["table_mult"].met == (figures["table_mult"].us_per_op <= 0.25 * var_base)
    assert figures["elgamal_encrypt"].met == (figures["elgamal_encrypt"].us_per_op <= var_base)
    assert figures["decode"].met is None
    assert report.to_json()["figures"]["add"]["us_per_op"] == figures["add"].us_per_op  # type: ignore[index]
