"""Errors raised by protocol stage functions on inputs they cannot process.

They mirror the reference's status codes: `InvalidProtocolInputError` is INVALID_ARGUMENT (the
request itself is wrong), `ProtocolIntegrityError` is INTERNAL (the inputs are well-formed but
their combination is impossible for honest parties, e.g. a tampered share).
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """Base class of protocol stage errors."""


class InvalidProtocolInputError(ProtocolError):
    """A parameter or input vector violates the protocol's preconditions."""


class PayloadDecodeError(InvalidProtocolInputError):
    """A stage payload is malformed or truncated and cannot be decoded."""


class NoDataNorNoiseError(InvalidProtocolInputError):
    """The aggregated histogram holds neither actual data nor effective noise."""


class ProtocolIntegrityError(ProtocolError):
    """Combined shares hold a value no honest run can produce (tampering or a bug upstream)."""
