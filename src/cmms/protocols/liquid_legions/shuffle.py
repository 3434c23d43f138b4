"""The "shuffle": a random permutation of fixed-size records (spec §1.6).

The reference sorts the records' bytes; a permutation drawn from the injected source gives the
same unlinkability and replays under a seeded source.
"""

from __future__ import annotations

import numpy as np

from cmms.crypto.randomness import RandomSource
from cmms.dp.samplers import numpy_generator
from cmms.protocols.liquid_legions.records import record_count


def shuffle_records(payload: bytes, record_size: int, random: RandomSource) -> bytes:
    """The records of `payload` in a uniformly random order."""
    count = record_count(payload, record_size, "shuffle")
    if count <= 1:
        return bytes(payload)
    rows = np.frombuffer(payload, dtype=np.uint8).reshape(count, record_size)
    order = numpy_generator(random).permutation(count)
    return rows[order].tobytes()
