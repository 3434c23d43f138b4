"""Value histograms of large small-integer vectors without a full-size int64 copy."""

from __future__ import annotations

import numpy as np

_CHUNK = 1 << 20


def value_counts(values: np.ndarray, minlength: int) -> np.ndarray:
    """`np.bincount(values, minlength=minlength)`, computed chunk by chunk.

    `bincount` first casts its input to intp, i.e. 8 bytes per uint8 register; chunking keeps
    that copy at 8 MiB however long the vector is.
    """
    counts = np.zeros(minlength, dtype=np.int64)
    for start in range(0, values.size, _CHUNK):
        chunk = np.bincount(values[start : start + _CHUNK], minlength=minlength)
        if chunk.size > counts.size:
            counts = np.concatenate([counts, np.zeros(chunk.size - counts.size, dtype=np.int64)])
        counts[: chunk.size] += chunk
    return counts
