"""Errors raised by sketch building and estimation."""

from __future__ import annotations

from cmms.crypto.errors import CryptoError, OutOfRangeError


class SketchParameterError(OutOfRangeError):
    """A sketch, sampling or estimator parameter is outside its allowed range."""


class VidNotInPopulationError(OutOfRangeError):
    """An event VID is not part of the population the VID index map was built from."""


class InconsistentAggregateError(CryptoError):
    """An aggregated vector holds values the protocol cannot produce, or nothing usable at all."""
