"""The optional compiled Fisher-Yates kernel gives exactly the vectorised numpy permutation."""

from __future__ import annotations

import numpy as np
import pytest

from cmms.crypto import shuffle_kernel
from cmms.crypto.errors import InvalidLengthError
from cmms.crypto.prng import secure_shuffle, secure_shuffle_in_place, shuffle_permutation

needs_numba = pytest.mark.skipif(not shuffle_kernel.available(), reason="numba is not installed")


@needs_numba
def test_reference_vector() -> None:
    data = np.arange(10, dtype=np.int64)
    assert secure_shuffle_in_place(data, b"a" * 48).tolist() == [8, 7, 6, 1, 3, 2, 5, 4, 0, 9]


@needs_numba
@pytest.mark.parametrize("n", [0, 1, 2, 3, 17, 1000, 70_001])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint32, np.int64])
def test_kernel_matches_numpy_permutation(n: int, dtype: type[np.generic]) -> None:
    seed = bytes(range(48))
    data = (np.arange(n) % 251).astype(dtype)
    expected = data[shuffle_permutation(n, seed)]
    assert secure_shuffle(data, seed).tolist() == expected.tolist()
    assert data.tolist() == (np.arange(n) % 251).astype(dtype).tolist()  # the copy left it alone
    assert secure_shuffle_in_place(data, seed).tolist() == expected.tolist()


@needs_numba
def test_bad_seed() -> None:
    with pytest.raises(InvalidLengthError, match="48 bytes"):
        secure_shuffle_in_place(np.arange(4), b"short")


def test_numpy_fallback_without_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shuffle_kernel, "kernel", lambda: None)
    monkeypatch.setattr(shuffle_kernel, "available", lambda: False)
    data = np.arange(10, dtype=np.uint8)
    assert secure_shuffle(data, b"a" * 48).tolist() == [8, 7, 6, 1, 3, 2, 5, 4, 0, 9]
    assert secure_shuffle_in_place(data, b"a" * 48).tolist() == [8, 7, 6, 1, 3, 2, 5, 4, 0, 9]
    with pytest.raises(InvalidLengthError):
        secure_shuffle_in_place(data, b"a")
