"""VID sampling intervals in the reference's float32 arithmetic (llv2.md §3.1, hmss §A.1)."""

from __future__ import annotations

import numpy as np

from cmms.sketch.errors import SketchParameterError
from cmms.sketch.fingerprint import fingerprint64_le64

LL_VID_SAMPLING_SALT = 1_414_214
_HASH_MASK = np.uint64(0x7FFFFF)
# 1.0f / 8388607 evaluated in float32, as the reference does.
_INVERSE_HASH_RANGE = np.float32(1) / np.float32(8_388_607)


def check_sampling_interval(start: float, width: float) -> tuple[np.float32, np.float32]:
    """`(start, width)` as float32; `0 <= start <= 1` and `0 < width <= 1`."""
    start32, width32 = np.float32(start), np.float32(width)
    if not 0 <= start32 <= 1:
        raise SketchParameterError(f"sampling interval start must be in [0, 1], got {start}")
    if not 0 < width32 <= 1:
        raise SketchParameterError(f"sampling interval width must be in (0, 1], got {width}")
    return start32, width32


def vid_sampling_hash(vids: np.ndarray) -> np.ndarray:
    """`(fingerprint64(le64(vid + 1414214)) & 0x7fffff) · (1/8388607)` in float32, in [0, 1]."""
    salted = np.asarray(vids, dtype=np.int64).astype(np.uint64) + np.uint64(LL_VID_SAMPLING_SALT)
    buckets = (fingerprint64_le64(salted) & _HASH_MASK).astype(np.float32)
    hashed: np.ndarray = buckets * _INVERSE_HASH_RANGE
    return hashed


def ll_vid_sampling_mask(vids: np.ndarray, start: float, width: float) -> np.ndarray:
    """Which VIDs an LLv2 EDP keeps: `start <= h < start + width`, or `h < start + width - 1`."""
    start32, width32 = check_sampling_interval(start, width)
    hashed = vid_sampling_hash(vids)
    end = start32 + width32
    kept: np.ndarray = ((hashed >= start32) & (hashed < end)) | (hashed < end - np.float32(1))
    return kept
