"""`cmms bench crypto` runs and prints one JSON document with every figure."""

from __future__ import annotations

import json

import pytest

from cmms.deploy.cli import main

EXPECTED_FIGURES = {
    "var_base_mult",
    "table_mult",
    "generator_mult",
    "decode",
    "encode",
    "add",
    "hash_to_curve",
    "elgamal_encrypt",
    "rerandomize",
    "partial_decrypt",
    "rerandomize_bytes",
    "aes_ctr",
}


def test_bench_crypto_json_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    main(["bench", "crypto", "--json", "--iterations", "2", "--repeats", "1"])
    document = json.loads(capsys.readouterr().out)
    assert document["benchmark"] == "crypto"
    assert document["iterations"] == 2
    assert document["calibration_us"] > 0
    figures = document["figures"]
    assert set(figures) == EXPECTED_FIGURES
    for name, figure in figures.items():
        assert figure["us_per_op"] > 0, name
        assert figure["ratio"] == pytest.approx(figure["us_per_op"] / document["calibration_us"])
    assert figures["aes_ctr"]["mb_per_s"] > 0
    for name in ("var_base_mult", "table_mult", "elgamal_encrypt"):
        assert figures[name]["target"]
        assert isinstance(figures[name]["met"], bool)


def test_bench_crypto_table_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    main(["bench", "crypto", "--iterations", "1", "--repeats", "1"])
    out = capsys.readouterr().out
    assert out.startswith("calibration")
    for name in EXPECTED_FIGURES:
        assert name in out


def test_bench_crypto_rejects_zero_iterations() -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["bench", "crypto", "--iterations", "0"])
    assert excinfo.value.code != 0
