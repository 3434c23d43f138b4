"""Key rules: what every backend accepts, and the clear errors for what none may accept."""

from __future__ import annotations

import pytest

from cmms.storage import InvalidBlobKeyError, validate_key, validate_prefix


@pytest.mark.parametrize(
    "key",
    ["a", "computations/g1/SETUP/0", "with space/é/日本", "dots.in.names", ".hidden", "a/...b"],
)
def test_valid_keys_pass_unchanged(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "must not be empty"),
        ("/abs", "relative"),
        ("../x", "'..'"),
        ("a/../x", "'..'"),
        ("a/./x", "'.'"),
        ("a\\b", "backslash"),
        ("a\x00b", "NUL"),
        ("a\nb", "control characters"),
        ("a\x7fb", "control characters"),
        ("a//b", "empty segments"),
        ("a/", "end with '/'"),
        ("\udc80", "UTF-8"),
        ("k" * 1025, "longer than 1024"),
    ],
)
def test_invalid_keys_say_what_is_wrong(key: str, message: str) -> None:
    with pytest.raises(InvalidBlobKeyError, match=message):
        validate_key(key)


def test_invalid_key_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        validate_key("")


def test_non_string_key_is_rejected() -> None:
    with pytest.raises(InvalidBlobKeyError, match="str"):
        validate_key(b"bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", ["", "a", "a/", "computations/g1/", "computations/g"])
def test_valid_prefixes(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/", "/a", "..", "../", "a/../", "a\\", "\x00"])
def test_invalid_prefixes(prefix: str) -> None:
    with pytest.raises(InvalidBlobKeyError):
        validate_prefix(prefix)
