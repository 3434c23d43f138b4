"""Fixed-size record layouts of the stage payloads and their length checks."""

from __future__ import annotations

from cmms.crypto.elgamal import CIPHERTEXT_SIZE
from cmms.protocols.liquid_legions.errors import PayloadSizeError

REGISTER_SIZE = 3 * CIPHERTEXT_SIZE  # index || key || count
TUPLE_SIZE = 4 * CIPHERTEXT_SIZE  # flag_a || flag_b || flag_c || count
SKA_ENTRY_SIZE = CIPHERTEXT_SIZE
REACH_ONLY_REGISTER_SIZE = CIPHERTEXT_SIZE
INDEX_OFFSET, KEY_OFFSET, COUNT_OFFSET = 0, CIPHERTEXT_SIZE, 2 * CIPHERTEXT_SIZE
FLAG_A_OFFSET, FLAG_B_OFFSET, FLAG_C_OFFSET, TUPLE_COUNT_OFFSET = (
    0,
    CIPHERTEXT_SIZE,
    2 * CIPHERTEXT_SIZE,
    3 * CIPHERTEXT_SIZE,
)


def record_count(payload: bytes, record_size: int, what: str) -> int:
    """How many `record_size` records `payload` holds; raises PayloadSizeError on a remainder."""
    if len(payload) % record_size:
        raise PayloadSizeError(
            f"{what}: {len(payload)} bytes is not a multiple of the {record_size}-byte record"
        )
    return len(payload) // record_size


def split_trailing_ciphertext(payload: bytes, record_size: int, what: str) -> tuple[bytes, bytes]:
    """`(records, ct)` of a payload that ends with one extra 66-byte ciphertext (reach-only)."""
    if len(payload) < CIPHERTEXT_SIZE:
        raise PayloadSizeError(
            f"{what}: {len(payload)} bytes cannot hold the trailing {CIPHERTEXT_SIZE}-byte ciphertext"
        )
    records, trailing = payload[:-CIPHERTEXT_SIZE], payload[-CIPHERTEXT_SIZE:]
    record_count(records, record_size, what)
    return records, trailing
