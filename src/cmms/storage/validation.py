"""Key and prefix rules shared by every backend.

Keys are '/'-separated relative paths. The rules are the strictest common denominator of a local
directory tree and object stores, so a key that works on one backend works on all of them and can
never reach outside the store's root.
"""

from __future__ import annotations

from cmms.storage.errors import InvalidBlobKeyError

_FORBIDDEN_CHARACTERS = {"\\": "a backslash", "\x00": "a NUL character"}
_FORBIDDEN_SEGMENTS = frozenset({".", ".."})
MAX_KEY_LENGTH = 1024


def validate_key(key: str) -> str:
    """Return `key` unchanged if it is a valid blob key, else raise `InvalidBlobKeyError`."""
    if not isinstance(key, str):
        raise InvalidBlobKeyError(f"blob key must be a str, got {type(key).__name__}")
    if not key:
        raise InvalidBlobKeyError("blob key must not be empty")
    _check_common(key, what="blob key")
    if key.endswith("/"):
        raise InvalidBlobKeyError(f"blob key {key!r} must not end with '/'")
    if any(segment == "" for segment in key.split("/")):
        raise InvalidBlobKeyError(f"blob key {key!r} must not contain empty segments ('//')")
    return key


def validate_prefix(prefix: str) -> str:
    """Return `prefix` unchanged if it can start a key ("" lists everything), else raise."""
    if not isinstance(prefix, str):
        raise InvalidBlobKeyError(f"blob key prefix must be a str, got {type(prefix).__name__}")
    if prefix:
        _check_common(prefix, what="blob key prefix")
    return prefix


def _check_common(value: str, *, what: str) -> None:
    if len(value.encode("utf-8", errors="surrogatepass")) > MAX_KEY_LENGTH:
        raise InvalidBlobKeyError(f"{what} is longer than {MAX_KEY_LENGTH} bytes")
    for character, name in _FORBIDDEN_CHARACTERS.items():
        if character in value:
            raise InvalidBlobKeyError(f"{what} {value!r} must not contain {name}")
    # Object stores list keys in XML, which cannot carry most control characters.
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in value):
        raise InvalidBlobKeyError(f"{what} {value!r} must not contain control characters")
    if value.startswith("/"):
        raise InvalidBlobKeyError(f"{what} {value!r} must be relative, not start with '/'")
    if any(segment in _FORBIDDEN_SEGMENTS for segment in value.split("/")):
        raise InvalidBlobKeyError(f"{what} {value!r} must not contain '.' or '..' segments")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidBlobKeyError(f"{what} {value!r} is not valid UTF-8") from error
