"""Exceptions raised by the pure core on bad input. Each says exactly what was wrong."""

from __future__ import annotations


class CryptoError(ValueError):
    """Base class: the input cannot be processed as given."""


class InvalidLengthError(CryptoError):
    """A byte string or vector has the wrong length (e.g. not a multiple of 33 or 66 bytes)."""


class InvalidPointError(CryptoError):
    """Bytes that do not encode a point on the curve."""


class IdentityPointError(CryptoError):
    """The point at infinity where it is not allowed (it is never serialised)."""


class OutOfRangeError(CryptoError):
    """A value outside its allowed range (a scalar, a share at or above the ring modulus, ...)."""


class DecryptionError(CryptoError):
    """A ciphertext failed authentication or could not be decrypted."""


class SignatureError(CryptoError):
    """A signature or certificate chain did not verify."""


class InvalidKeyError(CryptoError):
    """A key or keyset that cannot be parsed, or that does not fit the requested operation."""
