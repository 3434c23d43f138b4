"""RequisitionFulfillment over real mTLS, with the internal API and a fake Kingdom behind it:
who may upload, nonce verification, protocol headers, once-only storage, one Kingdom call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from cmms.api.internal.duchy.protocol.v1 import trustee_pb2
from cmms.api.internal.duchy.v1 import computation_details_pb2
from cmms.api.public.v1 import (
    common_pb2,
    crypto_pb2,
    measurement_spec_pb2,
    requisition_fulfillment_pb2,
    requisition_fulfillment_pb2_grpc,
    requisitions_pb2,
)
from cmms.common.grpc import StatusError
from cmms.common.identity import Principal
from cmms.duchy.deployable import DuchyDeployable
from cmms.duchy.fulfillment.verification import nonce_hash
from cmms.protocols.liquid_legions.records import REACH_ONLY_REGISTER_SIZE, REGISTER_SIZE
from cmms.testing.duchy_fixtures import TEST_MAX_PAYLOAD_BYTES, ChannelOpener
from cmms.testing.duchy_stack import (
    ComputationDriver,
    FakeKingdomRequisitions,
    hmss_details,
    llv2_details,
    ro_llv2_details,
)

pb = requisition_fulfillment_pb2
Header = pb.FulfillRequisitionRequest.Header
Stub = requisition_fulfillment_pb2_grpc.RequisitionFulfillmentStub
Caller = Callable[[Principal], Stub]
EDP1 = Principal.data_provider("edp1")
NONCE = 0xFEDCBA9876543210  # above 2**63: fixed64 nonces are unsigned
OTHER_NONCE = 77
FINGERPRINT = b"\x0f" * 32


def registers(count: int, fill: int = 1) -> bytes:
    """`count` LLv2 sketch registers' worth of bytes (the service checks only the length)."""
    return bytes([fill]) * (REGISTER_SIZE * count)


async def failure(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


@pytest.fixture
def as_caller(requisition_fulfillment: DuchyDeployable, channel_to: ChannelOpener) -> Caller:
    return lambda principal: Stub(channel_to(requisition_fulfillment.ports.grpc, principal))


@pytest.fixture
def kingdom(fake_kingdom: tuple[FakeKingdomRequisitions, int]) -> FakeKingdomRequisitions:
    return fake_kingdom[0]


def with_kingdom_facts(
    details: computation_details_pb2.ComputationDetails, nonce_hashes: list[bytes]
) -> computation_details_pb2.ComputationDetails:
    spec = measurement_spec_pb2.MeasurementSpec(nonce_hashes=nonce_hashes)
    details.kingdom_computation.public_api_version = "v1"
    details.kingdom_computation.measurement_spec = spec.SerializeToString()
    return details


def requisition(
    req_id: str = "r1", nonce: int = NONCE, fulfilling_duchy: str = "aggregator"
) -> computation_details_pb2.RequisitionEntry:
    return computation_details_pb2.RequisitionEntry(
        key=computation_details_pb2.ExternalRequisitionKey(
            external_requisition_id=req_id, requisition_fingerprint=FINGERPRINT
        ),
        value=computation_details_pb2.RequisitionDetails(
            nonce_hash=nonce_hash(nonce), external_fulfilling_duchy_id=fulfilling_duchy
        ),
    )


async def create(
    driver: ComputationDriver,
    gid: str = "c1",
    protocol: int = 1,
    entries: list[computation_details_pb2.RequisitionEntry] | None = None,
    spec_hashes: list[bytes] | None = None,
) -> None:
    details = {
        1: lambda: llv2_details(1, ["worker1", "worker2", "aggregator"]),
        2: lambda: ro_llv2_details(1, ["worker1", "worker2", "aggregator"]),
        3: lambda: hmss_details(1),
        4: lambda: computation_details_pb2.ComputationDetails(
            trus_tee=trustee_pb2.TrusTee.ComputationDetails(role=1)  # type: ignore[arg-type]
        ),
    }[protocol]()
    hashes = (
        spec_hashes if spec_hashes is not None else [nonce_hash(OTHER_NONCE), nonce_hash(NONCE)]
    )
    await driver.create(
        gid, protocol, with_kingdom_facts(details, hashes), entries or [requisition()]
    )


def header(req_id: str = "r1", edp: str = "edp1", nonce: int = NONCE, **extra: object) -> Header:
    return Header(
        name=f"dataProviders/{edp}/requisitions/{req_id}",
        requisition_fingerprint=FINGERPRINT,
        nonce=nonce,
        etag="etag-7",
        **extra,  # type: ignore[arg-type]
    )


def upload(first: Header | None, *chunks: bytes) -> Iterator[pb.FulfillRequisitionRequest]:
    if first is not None:
        yield pb.FulfillRequisitionRequest(header=first)
    for chunk in chunks:
        yield pb.FulfillRequisitionRequest(
            body_chunk=pb.FulfillRequisitionRequest.BodyChunk(data=chunk)
        )


def stored(blob_root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(blob_root).as_posix(): p.read_bytes()
        for p in blob_root.rglob("*")
        if p.is_file()
    }


async def test_fulfilment_stores_records_and_notifies_the_kingdom_once(
    driver: ComputationDriver, as_caller: Caller, kingdom: FakeKingdomRequisitions, blob_root: Path
) -> None:
    await create(driver)
    context = common_pb2.FulfillmentContext()
    reply = await as_caller(EDP1).FulfillRequisition(
        upload(header(fulfillment_context=context), registers(2, 7), registers(1, 8))
    )
    assert reply.state == requisitions_pb2.Requisition.FULFILLED
    assert stored(blob_root) == {"requisitions/c1/r1": registers(2, 7) + registers(1, 8)}
    recorded = (await driver.get("c1")).requisitions[0]
    assert recorded.path == "c1/r1"
    assert recorded.details.public_api_version == "v1"
    assert recorded.details.nonce == NONCE  # the Kingdom knows
    assert [(duchy, r.name, r.nonce, r.etag) for duchy, r in kingdom.calls] == [
        ("aggregator", "computations/c1/requisitions/r1", NONCE, "etag-7")
    ]


async def test_a_second_upload_is_refused_and_overwrites_nothing(
    driver: ComputationDriver, as_caller: Caller, kingdom: FakeKingdomRequisitions, blob_root: Path
) -> None:
    await create(driver)
    await as_caller(EDP1).FulfillRequisition(upload(header(), registers(1, 1)))
    again = await failure(as_caller(EDP1).FulfillRequisition(upload(header(), registers(1, 2))))
    assert again.code() == grpc.StatusCode.ALREADY_EXISTS
    assert stored(blob_root) == {"requisitions/c1/r1": registers(1, 1)}
    assert len(kingdom.calls) == 1


async def test_only_the_named_data_provider_may_upload(
    driver: ComputationDriver, as_caller: Caller, kingdom: FakeKingdomRequisitions, blob_root: Path
) -> None:
    await create(driver)
    for caller in (
        Principal.data_provider("edp2"),
        Principal.duchy("worker1"),
        Principal.measurement_consumer("mc1"),
    ):
        denied = await failure(as_caller(caller).FulfillRequisition(upload(header(), b"data")))
        assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    # edp2 naming itself still has to present edp1's nonce, which it does not know.
    impostor = await failure(
        as_caller(Principal.data_provider("edp2")).FulfillRequisition(
            upload(header(edp="edp2", nonce=OTHER_NONCE), b"data")
        )
    )
    assert impostor.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert stored(blob_root) == {} and kingdom.calls == []


async def test_unknown_requisitions_are_not_found(
    driver: ComputationDriver, as_caller: Caller
) -> None:
    await create(driver)
    unknown = await failure(as_caller(EDP1).FulfillRequisition(upload(header(req_id="r9"), b"x")))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    wrong_fingerprint = header()
    wrong_fingerprint.requisition_fingerprint = b"\x00" * 32
    other = await failure(as_caller(EDP1).FulfillRequisition(upload(wrong_fingerprint, b"x")))
    assert other.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("nonce", "spec_hashes"),
    [
        pytest.param(OTHER_NONCE, None, id="nonce of another requisition"),
        pytest.param(NONCE, [nonce_hash(OTHER_NONCE)], id="hash missing from the spec"),
    ],
)
async def test_unverifiable_nonces_fail_the_precondition(
    driver: ComputationDriver,
    as_caller: Caller,
    kingdom: FakeKingdomRequisitions,
    blob_root: Path,
    nonce: int,
    spec_hashes: list[bytes] | None,
) -> None:
    await create(driver, spec_hashes=spec_hashes)
    error = await failure(as_caller(EDP1).FulfillRequisition(upload(header(nonce=nonce), b"x")))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert stored(blob_root) == {} and kingdom.calls == []
    assert (await driver.get("c1")).requisitions[0].path == ""


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param([], id="empty stream"),
        pytest.param(list(upload(None, b"x")), id="body first"),
        pytest.param(
            list(upload(Header(name="requisitions/r1", nonce=NONCE), b"x")), id="bad name"
        ),
        pytest.param(list(upload(header(nonce=0), b"x")), id="zero nonce"),
        pytest.param(
            list(upload(Header(name="dataProviders/edp1/requisitions/r1", nonce=NONCE), b"x")),
            id="no fingerprint",
        ),
        pytest.param(
            [*upload(header(), b"x"), pb.FulfillRequisitionRequest(header=header())],
            id="second header",
        ),
    ],
)
async def test_malformed_uploads_are_invalid(
    driver: ComputationDriver,
    as_caller: Caller,
    blob_root: Path,
    messages: list[pb.FulfillRequisitionRequest],
) -> None:
    await create(driver)
    error = await failure(as_caller(EDP1).FulfillRequisition(iter(messages)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stored(blob_root) == {}


@pytest.mark.parametrize(
    ("protocol", "record_size"),
    [(1, REGISTER_SIZE), (2, REACH_ONLY_REGISTER_SIZE)],
)
async def test_a_sketch_of_partial_registers_is_refused_and_can_be_sent_again(
    driver: ComputationDriver,
    as_caller: Caller,
    kingdom: FakeKingdomRequisitions,
    blob_root: Path,
    protocol: int,
    record_size: int,
) -> None:
    await create(driver, protocol=protocol)
    torn = b"\x01" * (3 * record_size - 1)
    error = await failure(as_caller(EDP1).FulfillRequisition(upload(header(), torn)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"{3 * record_size - 1} bytes" in (error.details() or "")
    assert f"{record_size}-byte registers" in (error.details() or "")
    # Nothing is kept or recorded and the Kingdom hears nothing: a whole sketch is taken.
    assert stored(blob_root) == {}
    assert (await driver.get("c1")).requisitions[0].path == ""
    assert kingdom.calls == []
    whole = b"\x02" * (3 * record_size)
    reply = await as_caller(EDP1).FulfillRequisition(upload(header(), whole))
    assert reply.state == requisitions_pb2.Requisition.FULFILLED
    assert stored(blob_root) == {"requisitions/c1/r1": whole}


async def test_oversized_uploads_are_refused(
    driver: ComputationDriver, as_caller: Caller, blob_root: Path
) -> None:
    await create(driver)
    chunk = b"\x00" * (256 * 1024)
    error = await failure(
        as_caller(EDP1).FulfillRequisition(
            upload(header(), *[chunk] * (TEST_MAX_PAYLOAD_BYTES // len(chunk) + 1))
        )
    )
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert stored(blob_root) == {}


def hmss_header(**changes: object) -> Header.HonestMajorityShareShuffle:
    fields: dict[str, object] = {
        "secret_seed": crypto_pb2.EncryptedMessage(ciphertext=b"sealed-seed"),
        "register_count": 1024,
        "data_provider_certificate": "dataProviders/edp1/certificates/c1",
    }
    fields.update(changes)
    return Header.HonestMajorityShareShuffle(**{k: v for k, v in fields.items() if v is not None})  # type: ignore[arg-type]


async def test_hmss_fulfilment_records_the_seed(
    driver: ComputationDriver, as_caller: Caller, kingdom: FakeKingdomRequisitions, blob_root: Path
) -> None:
    await create(driver, protocol=3)
    await as_caller(EDP1).FulfillRequisition(
        upload(header(honest_majority_share_shuffle=hmss_header()), b"shares")
    )
    details = (await driver.get("c1")).requisitions[0].details
    assert details.protocol.honest_majority_share_shuffle.secret_seed_ciphertext == b"sealed-seed"
    assert details.protocol.honest_majority_share_shuffle.register_count == 1024
    assert details.protocol.honest_majority_share_shuffle.data_provider_certificate.endswith("/c1")
    assert stored(blob_root) == {"requisitions/c1/r1": b"shares"} and len(kingdom.calls) == 1


async def test_hmss_seed_only_upload_has_an_empty_body(
    driver: ComputationDriver, as_caller: Caller, blob_root: Path
) -> None:
    await create(driver, protocol=3)
    await as_caller(EDP1).FulfillRequisition(
        upload(header(honest_majority_share_shuffle=hmss_header()))
    )
    assert stored(blob_root) == {"requisitions/c1/r1": b""}


@pytest.mark.parametrize(
    ("protocol_header", "fulfilling_duchy", "code"),
    [
        pytest.param(
            hmss_header(secret_seed=None),
            "aggregator",
            grpc.StatusCode.INVALID_ARGUMENT,
            id="no seed",
        ),
        pytest.param(
            hmss_header(data_provider_certificate=" "),
            "aggregator",
            grpc.StatusCode.INVALID_ARGUMENT,
            id="no certificate",
        ),
        pytest.param(None, "aggregator", grpc.StatusCode.INVALID_ARGUMENT, id="no HMSS header"),
        pytest.param(
            hmss_header(), "worker1", grpc.StatusCode.FAILED_PRECONDITION, id="another duchy's"
        ),
    ],
)
async def test_hmss_header_checks(
    driver: ComputationDriver,
    as_caller: Caller,
    blob_root: Path,
    protocol_header: Header.HonestMajorityShareShuffle | None,
    fulfilling_duchy: str,
    code: grpc.StatusCode,
) -> None:
    await create(driver, protocol=3, entries=[requisition(fulfilling_duchy=fulfilling_duchy)])
    extra = {} if protocol_header is None else {"honest_majority_share_shuffle": protocol_header}
    error = await failure(as_caller(EDP1).FulfillRequisition(upload(header(**extra), b"x")))
    assert error.code() == code
    assert stored(blob_root) == {}


async def test_liquid_legions_takes_no_protocol_header(
    driver: ComputationDriver, as_caller: Caller
) -> None:
    await create(driver)
    error = await failure(
        as_caller(EDP1).FulfillRequisition(
            upload(header(honest_majority_share_shuffle=hmss_header()), b"x")
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


TrusTee = Header.TrusTee
Envelope = TrusTee.EnvelopeEncryption


def encrypted_trustee(
    dek_format: int = crypto_pb2.EncryptionKey.TINK_ENCRYPTED_KEYSET, **aws: str
) -> TrusTee:
    envelope = Envelope(
        encrypted_dek=crypto_pb2.EncryptionKey(format=dek_format, data=b"wrapped"),  # type: ignore[arg-type]
        kms_kek_uri="fake-kms://kek",
        workload_identity_provider="pool/provider",
        impersonated_service_account="sa@example",
    )
    if aws:
        envelope.aws_kms_params.CopyFrom(
            Envelope.AwsKmsParams(role_arn="arn:role", region="eu-west-1", **aws)
        )
    return TrusTee(
        data_format=TrusTee.ENCRYPTED_FREQUENCY_VECTOR,
        envelope_encryption=envelope,
        population_spec_fingerprint=99,
    )


async def test_trustee_fulfilment_records_the_envelope(
    driver: ComputationDriver, as_caller: Caller
) -> None:
    await create(driver, protocol=4)
    trustee = encrypted_trustee(confidential_space_attestation_token_audience="sts.amazonaws.com")
    await as_caller(EDP1).FulfillRequisition(upload(header(trus_tee=trustee), b"\x01\x02"))
    recorded = (await driver.get("c1")).requisitions[0].details.protocol.trus_tee
    assert recorded.data_format == recorded.ENCRYPTED_FREQUENCY_VECTOR
    assert recorded.encrypted_dek_ciphertext == b"wrapped"
    assert recorded.kms_kek_uri == "fake-kms://kek"
    assert recorded.population_spec_fingerprint == 99
    assert recorded.aws_kms_params.audience == "sts.amazonaws.com"
    assert recorded.aws_kms_params.credential_source == recorded.AwsKmsParams.CONFIDENTIAL_SPACE


@pytest.mark.parametrize(
    "trustee",
    [
        pytest.param(TrusTee(), id="unspecified format"),
        pytest.param(encrypted_trustee(dek_format=0), id="DEK not a Tink keyset"),
        pytest.param(encrypted_trustee(role_session_name="s"), id="AWS without audience"),
    ],
)
async def test_trustee_header_checks(
    driver: ComputationDriver, as_caller: Caller, blob_root: Path, trustee: TrusTee
) -> None:
    await create(driver, protocol=4)
    error = await failure(
        as_caller(EDP1).FulfillRequisition(upload(header(trus_tee=trustee), b"x"))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stored(blob_root) == {}


async def test_kingdom_errors_reach_the_data_provider(
    driver: ComputationDriver, as_caller: Caller, kingdom: FakeKingdomRequisitions
) -> None:
    await create(driver, protocol=4)
    kingdom.failure = StatusError(grpc.StatusCode.FAILED_PRECONDITION, "measurement is not waiting")
    plain = TrusTee(data_format=TrusTee.FREQUENCY_VECTOR, population_spec_fingerprint=5)
    error = await failure(
        as_caller(EDP1).FulfillRequisition(upload(header(trus_tee=plain), b"\x01"))
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert len(kingdom.calls) == 1


async def test_an_unreachable_kingdom_is_retried(
    driver: ComputationDriver, as_caller: Caller, kingdom: FakeKingdomRequisitions
) -> None:
    await create(driver)
    kingdom.unavailable_calls = 1
    reply = await as_caller(EDP1).FulfillRequisition(upload(header(), registers(1)))
    assert reply.state == requisitions_pb2.Requisition.FULFILLED
    assert [r.nonce for _, r in kingdom.calls] == [NONCE, NONCE]


async def test_a_retry_completes_a_fulfilment_the_kingdom_never_heard_of(
    driver: ComputationDriver, as_caller: Caller, kingdom: FakeKingdomRequisitions, blob_root: Path
) -> None:
    await create(driver, protocol=3)
    kingdom.failure = StatusError(grpc.StatusCode.INTERNAL, "the Kingdom fell over")
    first = await failure(
        as_caller(EDP1).FulfillRequisition(
            upload(header(honest_majority_share_shuffle=hmss_header()), b"first")
        )
    )
    assert first.code() == grpc.StatusCode.INTERNAL
    half_done = (await driver.get("c1")).requisitions[0]
    assert (half_done.path, half_done.details.nonce) == ("c1/r1", 0)

    kingdom.failure = None
    retry_header = header(honest_majority_share_shuffle=hmss_header(register_count=5))
    reply = await as_caller(EDP1).FulfillRequisition(upload(retry_header, b"second"))
    assert reply.state == requisitions_pb2.Requisition.FULFILLED
    done = (await driver.get("c1")).requisitions[0]
    assert done.details.nonce == NONCE
    # The data and protocol details recorded the first time are kept.
    assert stored(blob_root) == {"requisitions/c1/r1": b"first"}
    assert done.details.protocol.honest_majority_share_shuffle.register_count == 1024
    assert len(kingdom.calls) == 2

    again = await failure(as_caller(EDP1).FulfillRequisition(upload(retry_header, b"third")))
    assert again.code() == grpc.StatusCode.ALREADY_EXISTS
    assert len(kingdom.calls) == 2
