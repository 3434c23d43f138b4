"""Errors raised by the DP noise code."""

from __future__ import annotations

from cmms.crypto.errors import OutOfRangeError


class NoiseParameterError(OutOfRangeError):
    """A privacy or noise parameter is outside its allowed range (e.g. epsilon <= 0)."""


class NoiseSamplingError(RuntimeError):
    """A truncated sampler exhausted its attempts; the whole stage may simply be retried."""

    retryable = True
