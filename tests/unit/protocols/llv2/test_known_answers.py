"""End-to-end known answers from the reference's LLv2 tests (spec §10)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cmms.crypto.randomness import SeededRandomSource
from cmms.protocols.llv2.simulation import plaintext_llv2, simulate_llv2
from cmms.sketch import estimate_reach_with_sampling

from .helpers import DETERMINISTIC, parameters, sketch

VECTORS = json.loads((Path(__file__).parents[3] / "vectors" / "llv2_protocol.json").read_text())
CASES: list[dict[str, Any]] = VECTORS["end_to_end"]


def _frequency(case: dict[str, Any]) -> dict[int, float]:
    return {int(k): v for k, v in case["frequency"].items()}


def test_estimates_match_the_spec_port() -> None:
    estimates = VECTORS["estimates"]
    for active, reach in estimates["active_to_reach"].items():
        assert estimate_reach_with_sampling(12, 100_000, int(active), 0.5) == reach


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_reference_cases(case: dict[str, Any]) -> None:
    p = parameters(
        reach_noise=case.get("reach_noise", False),
        frequency_noise=DETERMINISTIC if case.get("deterministic_frequency_noise") else None,
    )
    # All registers in one sketch at the first duchy, as in the reference test.
    outcome = simulate_llv2(p, [[sketch(case["registers"])], [], []], SeededRandomSource("kat"))
    assert outcome.result.frequency == pytest.approx(_frequency(case), abs=1e-12)
    if "reach" in case:
        assert outcome.active_registers == case["active"]
        assert outcome.result.reach == case["reach"]


def test_kotlin_case() -> None:
    case = VECTORS["kotlin_end_to_end"]
    outcome = simulate_llv2(
        parameters(), [[sketch(case["registers"])], [], []], SeededRandomSource("kotlin")
    )
    assert outcome.result.frequency == pytest.approx(_frequency(case), abs=1e-12)


@pytest.mark.parametrize("max_frequency", [10, 1])
def test_thirty_registers_with_reach_noise(max_frequency: int) -> None:
    registers = [(i, i, 1) for i in range(1, 31)]
    p = parameters(max_frequency, reach_noise=True)
    held = [[sketch(registers)], [], []]
    outcome = simulate_llv2(p, held, SeededRandomSource(f"thirty/{max_frequency}"))
    assert outcome.active_registers == 30
    assert outcome.result.reach == VECTORS["estimates"]["active_to_reach"]["30"]
    assert outcome.result == plaintext_llv2(p, [sketch(registers)]).result
