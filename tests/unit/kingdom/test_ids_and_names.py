from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmms.kingdom import names
from cmms.kingdom.db.computations import StreamPosition
from cmms.kingdom.ids import MAX_EXTERNAL_ID, decode_external_id, encode_external_id
from cmms.kingdom.system.stream_token import decode_token, encode_token
from cmms.kingdom.timestamps import etag


@given(st.integers(min_value=1, max_value=MAX_EXTERNAL_ID))
def test_external_ids_round_trip_as_11_characters(value: int) -> None:
    text = encode_external_id(value)
    assert len(text) == 11 and "=" not in text
    assert decode_external_id(text) == value


@pytest.mark.parametrize("bad", ["", "AAAAAAAAAAA", "abc", "////////////", "gAAAAAAAAAA"])
def test_bad_external_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_external_id(bad)


# protobuf Timestamps end at 9999-12-31T23:59:59.999999Z.
LAST_VALID_MICROS = 253402300799_999999


@given(
    st.integers(min_value=0, max_value=LAST_VALID_MICROS),
    st.integers(min_value=1, max_value=MAX_EXTERNAL_ID),
)
def test_stream_tokens_round_trip(micros: int, computation_id: int) -> None:
    position = StreamPosition(micros, computation_id)
    token = encode_token(position)
    assert "=" not in token
    assert decode_token(token) == position


def test_token_past_the_timestamp_range_is_malformed() -> None:
    token = encode_token(StreamPosition(LAST_VALID_MICROS + 1, 1))
    with pytest.raises(ValueError, match="malformed continuation token"):
        decode_token(token)


def test_etag_follows_the_reference_recipe() -> None:
    # SHA-256 of seconds=1 (8 bytes) and nanos=1000 (4 bytes), upper-case hex, weak tag.
    import hashlib

    digest = hashlib.sha256((1).to_bytes(8, "big") + (1000).to_bytes(4, "big")).hexdigest().upper()
    assert etag(1_000_001) == f'W/"{digest}"'
    assert etag(1_000_001) != etag(1_000_002)


def test_names_parse_and_build() -> None:
    requisition_id = 12345
    name = names.requisition_name("edp1", requisition_id)
    assert names.parse_requisition(name) == ("edp1", requisition_id)
    assert names.parse_participant(names.participant_name(7, "worker1")) == (7, "worker1")
    assert names.parse_system_requisition(names.system_requisition_name(7, 9)) == (7, 9)
    key = names.parse_certificate(names.certificate_name(names.OwnerKind.DUCHY, "worker1", 5))
    assert key is not None and key.owner.id == "worker1" and key.certificate_id == 5
    assert names.parse_measurement("measurementConsumers/mc1/measurements/x") is None
    assert names.parse_data_provider("measurementConsumers/mc1") is None
