"""Errors of the Liquid Legions stage functions.

Malformed points keep the crypto layer's own errors (`InvalidPointError`, `IdentityPointError`);
these cover what the crypto layer cannot know about a payload.
"""

from __future__ import annotations

from cmms.crypto.errors import InvalidLengthError


class LiquidLegionsError(ValueError):
    """Base class: a stage cannot run on the inputs it was given."""


class PayloadSizeError(LiquidLegionsError, InvalidLengthError):
    """A payload whose length does not fit its record layout."""


class InvalidStageInputError(LiquidLegionsError):
    """A parameter, key or payload content that no honest run produces."""


class EmptyHistogramError(LiquidLegionsError):
    """The frequency histogram holds nothing after noise removal."""
