"""Noise parameter formulas against every offset listed in llv2.md §10 and hmss §A.3."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from cmms.dp import (
    DiscreteGaussianNoiseParams,
    GeometricNoiseParams,
    NoiseParameterError,
    PrivacyParams,
    discrete_gaussian_params,
    geometric_params,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "dp_noise.json").read_text()
)

_NAMED = {
    "ln3/10": math.log(3) / 10,
    "0.35ln3": 0.35 * math.log(3),
    "e^-80": math.exp(-80),
    "e^-40": math.exp(-40),
}


def _value(raw: float | str) -> float:
    return _NAMED[raw] if isinstance(raw, str) else float(raw)


@pytest.mark.parametrize("case", VECTORS["geometric"])
def test_geometric_offsets(case: dict[str, Any]) -> None:
    privacy = PrivacyParams(_value(case["epsilon"]), _value(case["delta"]))
    params = geometric_params(privacy, case["contributors"], case["sensitivity"])
    assert params.offset == case["offset"]
    assert params.truncation_threshold == case["offset"]
    assert params.p == pytest.approx(math.exp(-privacy.epsilon / case["sensitivity"]))
    if "p" in case:
        assert params.p == pytest.approx(case["p"], abs=1e-3)


@pytest.mark.parametrize("case", VECTORS["discrete_gaussian"])
def test_discrete_gaussian_offsets(case: dict[str, Any]) -> None:
    privacy = PrivacyParams(_value(case["epsilon"]), _value(case["delta"]))
    params = discrete_gaussian_params(privacy, case["contributors"])
    assert params.offset == case["offset"]
    assert params.truncation_threshold == case["offset"]
    if "sigma_d" in case:
        assert params.sigma_d == pytest.approx(case["sigma_d"], abs=1e-3)


@pytest.mark.parametrize(
    ("epsilon", "delta"),
    [
        (0.0, 0.1),
        (-1.0, 0.1),
        (math.inf, 0.1),
        (math.nan, 0.1),
        (1.0, 0.0),
        (1.0, -0.5),
        (1.0, 1.5),
    ],
)
def test_invalid_privacy_params(epsilon: float, delta: float) -> None:
    with pytest.raises(NoiseParameterError):
        PrivacyParams(epsilon, delta)


def test_invalid_contributors_and_sensitivity() -> None:
    privacy = PrivacyParams(1.0, 0.1)
    with pytest.raises(NoiseParameterError, match="contributors"):
        geometric_params(privacy, 0, 1)
    with pytest.raises(NoiseParameterError, match="sensitivity"):
        geometric_params(privacy, 2, 0)
    with pytest.raises(NoiseParameterError, match="contributors"):
        discrete_gaussian_params(privacy, 0)


def test_invalid_noise_params() -> None:
    with pytest.raises(NoiseParameterError):
        GeometricNoiseParams(p=1.0, offset=3, contributors=2)
    with pytest.raises(NoiseParameterError):
        GeometricNoiseParams(p=0.5, offset=-1, contributors=2)
    with pytest.raises(NoiseParameterError):
        DiscreteGaussianNoiseParams(sigma_d=0.0, offset=3, contributors=2)
    with pytest.raises(NoiseParameterError):
        DiscreteGaussianNoiseParams(sigma_d=1.0, offset=3, contributors=0)
