"""Reach scaling by the float32 sampling width (§D.1 EstimateReach, pitfall 8)."""

from __future__ import annotations

import pytest

from cmms.protocols.errors import InvalidProtocolInputError
from cmms.protocols.measurement import estimate_reach, float32_width


def test_d1_estimate_reach() -> None:
    assert estimate_reach(10, 0.5) == 20
    assert estimate_reach(10, 1.0) == 10
    assert estimate_reach(10, 0.1) == 99  # 10 / float32(0.1) = 99.9999985...


@pytest.mark.parametrize(("count", "width"), [(-1, 0.5), (10, 0.0), (10, -0.5), (10, 1.1)])
def test_d1_estimate_reach_errors(count: int, width: float) -> None:
    with pytest.raises(InvalidProtocolInputError):
        estimate_reach(count, width)


def test_width_is_read_as_float32() -> None:
    assert float32_width(0.1) == 0.10000000149011612
