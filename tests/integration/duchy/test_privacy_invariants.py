"""Privacy invariants of a whole system run: one measurement per protocol (LLv2, reach-only LLv2,
HMSS, TrusTee) through a real Kingdom and three duchies on loopback (the end-to-end harness of
`test_mill_end_to_end.py`), with EDP data drawn from a canary population, then a search of each
single duchy's storage and of every log line of the run.

What is searched for, and why its absence means something:

- Plaintext of the EDPs' data, in every form the protocols handle it:
  * LLv2 and reach-only: the curve points `MapToCurve(str(register index))` of every register a
    canary VID lands in, the key points `MapToCurve(str(sampling indicator + 1))`, and the count
    points `c·P` (c = 1..F+1). These are exactly the ElGamal plaintexts inside the EDPs' encrypted
    sketches; a duchy holding one has decrypted a register, which takes all three duchies' keys.
  * HMSS and TrusTee: windows of 32 registers (as bytes, and 8 registers as little-endian uint32,
    the share-vector layout) of each EDP's frequency vector and of their capped sum, taken where
    at least 12 (4) registers are nonzero, so that no window can match by chance. One HMSS worker
    holds a uniformly random data share, the other the seed of the complementary share; the
    TrusTee duchy holds the vector only under envelope encryption. Finding a window means a
    single duchy had (and kept) the plaintext.
  * The canary VIDs' 64-bit fingerprints (sketch index and sampling-indicator fingerprints, and
    the frequency-vector index fingerprints), as 8 bytes in either byte order. No duchy is ever
    given them.
  Before searching, the test proves the canaries are the true plaintext: it decrypts the stored
  LLv2 sketches with the sum of all three duchies' secrets, recombines the HMSS data share of one
  worker with the seed opened by the other, and opens the TrusTee envelopes with the EDPs' KMS
  key, and each gives exactly the canary points or vectors. So the plaintext is in the data the
  duchies hold, only spread over several duchies or sealed under keys no single duchy's storage
  has; its absence from each single duchy's storage is the invariant.

- Private keys at rest: each duchy's LLv2 and reach-only ElGamal secrets, the HMSS workers' HPKE
  private keys (raw X25519 key and the cleartext keyset), the EDPs' HMSS seeds, the TrusTee data
  encryption keys and the duchies' key-encryption keys. The test recovers each one by unsealing
  what the duchy stored with its KEK (so it is really stored, sealed) and then searches the
  duchy's storage for the raw secret.

- Logs: every line written during the run (captured at the file descriptors, JSON logging at
  DEBUG) is searched for all of the secrets above, the HMSS workers' own seeds, the secret
  scalars of every party's TLS and consent-signalling keys and of the EDP and consumer
  encryption keys, and the ElGamal secrets as decimal numbers.

Every value is searched raw, as hex, as base64/base64url at each alignment, and as an escaped
bytes repr (`cmms.testing.secret_scan`). "A duchy's storage" is its database (every file, and
every value of every table and column read through SQLite, details blobs and their JSON
included) and its blob store; its `kek.tink` stands in for the KMS and is not storage.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import structlog
import tink
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_private_key, load_pem_private_key
from tink import secret_key_access
from tink.proto import (
    aes_gcm_hkdf_streaming_pb2,
    aes_gcm_pb2,
    ecies_aead_hkdf_pb2,
    hpke_pb2,
    tink_pb2,
)

from cmms.api.internal.duchy.v1 import computation_details_pb2
from cmms.api.public.v1 import certificates_pb2_grpc, crypto_pb2, measurement_spec_pb2
from cmms.clients.certificates import KingdomCertificates as ClientCertificates
from cmms.clients.edp.payloads import KmsKey
from cmms.clients.edp.population import Audience, Population, impression_vids, reached_vids
from cmms.clients.edp.simulator import (
    EdpSimulator,
    KingdomStubs,
    OutcomeKind,
    SimulatorOptions,
    capabilities,
    duchy_stubs,
)
from cmms.clients.identity import PartyKeys
from cmms.clients.mc.client import Backoff
from cmms.clients.mc.measurement import MeasurementKind, MeasurementParams
from cmms.common import consent
from cmms.common import logging as cmms_logging
from cmms.common.identity import Principal, PrincipalKind
from cmms.common.kms import LocalFileKmsClient, create_local_kek_file
from cmms.common.pki import PkiLayout, PkiSpec
from cmms.crypto import elgamal, group
from cmms.crypto.envelope import open_envelope
from cmms.crypto.hybrid import HybridPrivateKey
from cmms.crypto.keystore import aead_from_cleartext_keyset
from cmms.crypto.prng import AesCtrPrng
from cmms.crypto.randomness import SeededRandomSource
from cmms.crypto.sharing import add_mod
from cmms.duchy.mill.liquid_legions import KEY_ASSOCIATED_DATA
from cmms.duchy.private_keys import PrivateKeyStore
from cmms.protocols.hmss.payloads import decode_frequency_vector
from cmms.sketch import SamplingInterval, VidIndexMap, build_frequency_vector
from cmms.sketch.encryption import UNIT_POINT_SEED
from cmms.sketch.fingerprint import fingerprint64, fingerprint64_be64_pair
from cmms.sketch.frequency_vector import VID_INDEX_SALT
from cmms.sketch.liquid_legions import register_index, sampling_indicator
from cmms.storage.filesystem import FileBlobStore
from cmms.testing.secret_scan import Finding, NeedleSet, duchy_storage

from .test_mill_end_to_end import (
    DUCHIES,
    EDPS,
    MC,
    MEASUREMENT_TIMEOUT_SECONDS,
    POLL_SECONDS,
    Measurement,
    System,
    dev_pki,
    running_system,
    until,
)

__all__ = ["dev_pki"]

pytestmark = pytest.mark.slow

CANARY_POPULATION = Population(seed=0xCA7A, size=3_000, first_vid=0x0CA7_0000, overlap=0.5)
REACH_FRACTION = 0.4
MAX_FREQUENCY = 4
LLV2, RO_LLV2, HMSS, TRUSTEE = 1, 2, 3, 4
ComputationDetails = computation_details_pb2.ComputationDetails
RequisitionDetails = computation_details_pb2.RequisitionDetails


# ------------------------------------------------------------------------------ running


def edp(
    system: System, edp_id: str, *, hmss: bool, trustee: bool, kms: KmsKey | None
) -> EdpSimulator:
    principal = Principal.data_provider(edp_id)
    kingdom = system.channel(system.public_target, principal)
    fulfillment = {
        d: system.channel(f"127.0.0.1:{duchy.port('fulfillment')}", principal)
        for d, duchy in system.duchies.items()
    }
    return EdpSimulator(
        PartyKeys.from_pki(system.pki, principal),
        KingdomStubs.over(kingdom),
        ClientCertificates(certificates_pb2_grpc.CertificatesStub(kingdom)),
        duchy_stubs(fulfillment),
        CANARY_POPULATION,
        Audience(edp_id, REACH_FRACTION),
        SimulatorOptions(
            capabilities(hmss=hmss, trustee=trustee),
            measurement_consumers=(MC.resource_name,),
            kms=kms,
        ),
        SeededRandomSource(f"canary/{edp_id}"),
    )


async def measure(
    system: System,
    params: MeasurementParams,
    expected_protocol: str,
    *,
    hmss: bool = False,
    trustee: bool = False,
    kms: KmsKey | None = None,
) -> Measurement:
    edps = [edp(system, e, hmss=hmss, trustee=trustee, kms=kms) for e in EDPS]
    for simulator in edps:
        await simulator.start()
    consumer = system.consumer()
    measurement, _ = await consumer.create(params, [f"dataProviders/{e}" for e in EDPS])
    assert measurement.protocol_config.WhichOneof("protocol") == expected_protocol
    fulfilled: set[str] = set()

    async def all_fulfilled() -> bool:
        for edp_id, simulator in zip(EDPS, edps, strict=True):
            for outcome in await simulator.poll_once():
                assert outcome.kind is OutcomeKind.FULFILLED, outcome
                fulfilled.add(edp_id)
        return fulfilled == set(EDPS)

    await until(all_fulfilled, system, f"the EDPs to fulfil the {expected_protocol} requisitions")
    done = await consumer.wait(
        measurement.name,
        backoff=Backoff(initial_seconds=POLL_SECONDS, multiplier=1.0),
        on_update=lambda _: system.check_daemons(),
        max_wait_seconds=MEASUREMENT_TIMEOUT_SECONDS,
    )
    assert done.state == Measurement.SUCCEEDED, done.failure
    return done


@contextlib.contextmanager
def production_logging() -> Iterator[None]:
    """The production JSON logging, with this project's DEBUG lines too; restored afterwards.

    Entered inside the test, so that the stdlib handler writes to the stream being captured.
    Third-party libraries stay at INFO: at DEBUG aiosqlite alone logs every statement with its
    parameters, which slows a whole run to a crawl (and is no production setting).
    """
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    cmms_logging.configure_logging("DEBUG")
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)


# ------------------------------------------------------------------------------ what a duchy stored


@dataclass
class StoredRequisition:
    external_id: str
    details: RequisitionDetails
    path: str | None


@dataclass
class StoredComputation:
    global_id: str
    protocol: int
    details: ComputationDetails
    requisitions: list[StoredRequisition] = field(default_factory=list)


@dataclass
class DuchyFiles:
    duchy_id: str
    directory: Path

    @property
    def database(self) -> Path:
        return self.directory / "duchy.db"

    @property
    def blobs(self) -> Path:
        return self.directory / "blobs"

    @property
    def kek_file(self) -> Path:
        return self.directory / "kek.tink"

    def kek(self) -> Any:
        return aead_from_cleartext_keyset(self.kek_file.read_bytes())

    def computations(self) -> list[StoredComputation]:
        connection = sqlite3.connect(f"{self.database.as_uri()}?mode=ro", uri=True)
        try:
            found = {
                cid: StoredComputation(gid, protocol, ComputationDetails.FromString(details))
                for cid, gid, protocol, details in connection.execute(
                    "SELECT computation_id, global_computation_id, protocol, computation_details "
                    "FROM computations"
                )
            }
            for cid, rid, details, path in connection.execute(
                "SELECT computation_id, external_requisition_id, requisition_details, "
                "path_to_blob FROM requisitions"
            ):
                found[cid].requisitions.append(
                    StoredRequisition(rid, RequisitionDetails.FromString(details), path)
                )
        finally:
            connection.close()
        return list(found.values())

    def of_protocol(self, protocol: int) -> StoredComputation:
        [computation] = [c for c in self.computations() if c.protocol == protocol]
        return computation

    def requisition_blob(self, requisition: StoredRequisition) -> bytes:
        assert requisition.path
        return (self.blobs / "requisitions" / requisition.path).read_bytes()

    def storage(self) -> list[tuple[str, bytes]]:
        return duchy_storage(self.directory, excluded=[self.kek_file])


def keyset_secrets(cleartext_keyset: bytes) -> list[bytes]:
    """The raw key material of every key of a cleartext Tink keyset (and each serialized key)."""
    keyset = tink_pb2.Keyset.FromString(cleartext_keyset)
    parsers: dict[str, Any] = {
        "HpkePrivateKey": lambda v: hpke_pb2.HpkePrivateKey.FromString(v).private_key,
        "AesGcmKey": lambda v: aes_gcm_pb2.AesGcmKey.FromString(v).key_value,
        "AesGcmHkdfStreamingKey": lambda v: (
            aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey.FromString(v).key_value
        ),
        "EciesAeadHkdfPrivateKey": lambda v: (
            ecies_aead_hkdf_pb2.EciesAeadHkdfPrivateKey.FromString(v).key_value
        ),
    }
    secrets: list[bytes] = []
    for key in keyset.key:
        kind = key.key_data.type_url.rsplit(".", 1)[-1]
        assert kind in parsers, f"no parser for {kind}"
        secrets += [parsers[kind](key.key_data.value), key.key_data.value]
    assert secrets
    return secrets


def handle_secrets(handle: Any) -> list[bytes]:
    return keyset_secrets(tink.proto_keyset_format.serialize(handle, secret_key_access.TOKEN))


def scalar_forms(value: int) -> list[bytes]:
    return [value.to_bytes(32, "big"), value.to_bytes(32, "little")]


# ------------------------------------------------------------------------------ canaries


@dataclass
class Canaries:
    """Plaintext needles (labelled) and the exact values the positive controls compare with."""

    plaintext: NeedleSet = field(default_factory=NeedleSet)
    index_points: dict[int, set[bytes]] = field(default_factory=dict)  # protocol -> points
    vectors: dict[tuple[int, str], np.ndarray] = field(default_factory=dict)  # (protocol, edp)


def spec_of(measurement: Measurement) -> measurement_spec_pb2.MeasurementSpec:
    return consent.unpack(measurement.measurement_spec, measurement_spec_pb2.MeasurementSpec)


def add_vector_windows(needles: NeedleSet, label: str, vector: np.ndarray) -> int:
    added = 0
    values = np.asarray(vector, dtype=np.uint8)
    for start in range(0, values.size - 32 + 1, 16):
        window = values[start : start + 32]
        if np.count_nonzero(window) >= 12:
            needles.add(f"{label} bytes [{start}:{start + 32}]", window.tobytes())
            added += 1
    for start in range(0, values.size - 8 + 1, 4):
        window = values[start : start + 8]
        if np.count_nonzero(window) >= 4:
            needles.add(f"{label} uint32 [{start}:{start + 8}]", window.astype("<u4").tobytes())
            added += 1
    return added


def canaries(measurements: dict[int, Measurement]) -> Canaries:
    found = Canaries()
    events = {e: impression_vids(CANARY_POPULATION, Audience(e, REACH_FRACTION)) for e in EDPS}
    vids = np.unique(
        np.concatenate([reached_vids(CANARY_POPULATION, Audience(e, REACH_FRACTION)) for e in EDPS])
    )
    needles = found.plaintext
    for protocol, member in (
        (LLV2, "liquid_legions_v2"),
        (RO_LLV2, "reach_only_liquid_legions_v2"),
    ):
        sketch = getattr(measurements[protocol].protocol_config, member).sketch_params
        points = set()
        for vid in vids.tolist():
            index = register_index(vid, sketch.decay_rate, sketch.max_size)
            point = group.hash_to_curve(str(index).encode())
            points.add(point)
            needles.add(f"index point of VID {vid} (register {index})", point)
            if protocol == LLV2:
                key = sampling_indicator(vid, sketch.sampling_indicator_size) + 1
                needles.add(
                    f"key point of VID {vid} (key {key})", group.hash_to_curve(str(key).encode())
                )
        found.index_points[protocol] = points
    unit = group.hash_to_curve(UNIT_POINT_SEED)
    for count in range(1, MAX_FREQUENCY + 2):
        needles.add(f"count point {count}·P", group.point_multiply(unit, count))
    for vid in vids.tolist():
        for name in ("Index", "SamplingIndicator"):
            print_ = fingerprint64(f"AnySketchFingerprint:{vid}:{name}")
            needles.add(f"{name} fingerprint of VID {vid}", print_.to_bytes(8, "little"))
            needles.add(f"{name} fingerprint of VID {vid} (BE)", print_.to_bytes(8, "big"))
    index_prints = fingerprint64_be64_pair(vids, VID_INDEX_SALT)
    for vid, print_ in zip(vids.tolist(), index_prints.tolist(), strict=True):
        needles.add(f"index-map fingerprint of VID {vid}", int(print_).to_bytes(8, "little"))
        needles.add(f"index-map fingerprint of VID {vid} (BE)", int(print_).to_bytes(8, "big"))
    index_map = VidIndexMap(CANARY_POPULATION.vids)
    for protocol in (HMSS, TRUSTEE):
        spec = spec_of(measurements[protocol])
        interval = SamplingInterval.for_population(
            len(index_map), spec.vid_sampling_interval.start, spec.vid_sampling_interval.width
        )
        frequency = spec.reach_and_frequency.maximum_frequency
        vectors = {
            e: build_frequency_vector(index_map, interval, events[e], frequency) for e in EDPS
        }
        found.vectors.update({(protocol, e): v for e, v in vectors.items()})
        windows = sum(
            add_vector_windows(needles, f"{e} vector (protocol {protocol})", v)
            for e, v in vectors.items()
        )
        combined = np.minimum(sum(v.astype(np.int64) for v in vectors.values()), frequency)
        windows += add_vector_windows(needles, f"combined vector (protocol {protocol})", combined)
        assert windows > 100  # enough of every vector is searched
    return found


# ------------------------------------------------------------------------------ the test


async def measure_every_protocol(
    tmp_path: Path, pki: PkiLayout, edp_kms: KmsKey
) -> dict[int, Measurement]:
    frequency = MeasurementParams(max_frequency=MAX_FREQUENCY)
    async with running_system(tmp_path, pki, trustee__enabled=True) as system:
        return {
            LLV2: await measure(system, frequency, "liquid_legions_v2"),
            RO_LLV2: await measure(
                system,
                MeasurementParams(kind=MeasurementKind.REACH),
                "reach_only_liquid_legions_v2",
            ),
            HMSS: await measure(system, frequency, "honest_majority_share_shuffle", hmss=True),
            TRUSTEE: await measure(
                system, frequency, "trus_tee", hmss=True, trustee=True, kms=edp_kms
            ),
        }


def violations(title: str, findings: list[Finding]) -> list[str]:
    return [f"{title}: {finding}" for finding in findings[:20]] + (
        [f"{title}: ... {len(findings) - 20} more"] if len(findings) > 20 else []
    )


async def test_no_single_duchy_holds_plaintext_and_no_key_is_stored_or_logged_in_clear(
    tmp_path: Path,
    dev_pki: PkiLayout,
    capfd: pytest.CaptureFixture[str],
) -> None:
    edp_kek_dir = tmp_path / "edp-kms"
    edp_kek_dir.mkdir()
    edp_kek_uri = create_local_kek_file(edp_kek_dir / "kek.tink")
    edp_kms = KmsKey(LocalFileKmsClient(), edp_kek_uri)
    with production_logging():
        measurements = await measure_every_protocol(tmp_path, dev_pki, edp_kms)
    captured = capfd.readouterr()
    logs = (captured.out + captured.err).encode()

    duchies = {d: DuchyFiles(d, tmp_path / d) for d in DUCHIES}
    found = canaries(measurements)
    secrets = NeedleSet()  # must be neither stored in clear nor logged
    logged_only = NeedleSet()  # must not be logged (stored in clear by design, or held elsewhere)

    # --- LLv2 and reach-only: every duchy's ElGamal secret is sealed under its KEK. Their sum
    # decrypts the stored sketches to exactly the canary index points (positive control).
    for protocol in (LLV2, RO_LLV2):
        member = "liquid_legions_v2" if protocol == LLV2 else "reach_only_liquid_legions_v2"
        total = 0
        for duchy in duchies.values():
            computation = duchy.of_protocol(protocol)
            stored = getattr(computation.details, member).local_el_gamal_key
            assert stored.WhichOneof("secret") == "wrapped_secret_key", duchy.duchy_id
            raw = duchy.kek().decrypt(stored.wrapped_secret_key, KEY_ASSOCIATED_DATA)
            secret = elgamal.secret_from_bytes(raw)
            total += secret
            label = f"{duchy.duchy_id} ElGamal secret ({computation.global_id})"
            for form in scalar_forms(secret):
                secrets.add(label, form)
            logged_only.add(f"{label} (decimal)", str(secret).encode(), encoded=False)
        combined = total % group.ORDER
        record = 198 if protocol == LLV2 else 66
        decrypted: set[bytes] = set()
        for duchy in duchies.values():
            for requisition in duchy.of_protocol(protocol).requisitions:
                if not requisition.path:
                    continue
                sketch = duchy.requisition_blob(requisition)
                for offset in range(0, len(sketch), record):
                    point = elgamal.decrypt_one(sketch[offset : offset + 66], combined)
                    assert point is not None
                    decrypted.add(point)
        assert decrypted and decrypted <= found.index_points[protocol], protocol

    # --- HMSS: the keyed worker's HPKE private key is sealed in its blob store; with it, the EDP
    # seeds recorded at the other worker open, and recombine its data shares to the canaries.
    private_keys: dict[str, HybridPrivateKey] = {}
    for duchy in duchies.values():
        details = duchy.of_protocol(HMSS).details.honest_majority_share_shuffle
        if details.random_seed:
            logged_only.add(f"{duchy.duchy_id} HMSS own seed", details.random_seed)
        key_id = details.encryption_key_pair.private_key_id
        if not key_id:
            continue
        key = await PrivateKeyStore(FileBlobStore(duchy.blobs, fsync=False), duchy.kek()).load(
            key_id
        )
        private_keys[duchy.duchy_id] = key
        secrets.add(f"{duchy.duchy_id} HPKE cleartext keyset", key.cleartext_keyset())
        for material in handle_secrets(key.keyset_handle):
            secrets.add(f"{duchy.duchy_id} HPKE private key", material)
    assert private_keys
    recombined: set[str] = set()
    for duchy in duchies.values():
        computation = duchy.of_protocol(HMSS)
        q = computation.details.honest_majority_share_shuffle.parameters.ring_modulus
        for requisition in computation.requisitions:
            if not requisition.path:
                continue
            hmss = requisition.details.protocol.honest_majority_share_shuffle
            edp_id = hmss.data_provider_certificate.split("/")[1]
            [key] = [k for d, k in private_keys.items() if d != duchy.duchy_id]
            signed = consent.decrypt_signed(
                crypto_pb2.EncryptedMessage(
                    ciphertext=hmss.secret_seed_ciphertext,
                    type_url=consent.SIGNED_MESSAGE_TYPE_URL,
                ),
                key,
            )
            seed = consent.unpack(signed, crypto_pb2.RandomSeed).data
            secrets.add(f"{edp_id} HMSS seed", seed)
            share = decode_frequency_vector(duchy.requisition_blob(requisition), q)
            other = AesCtrPrng(seed).uniform_range(share.size, q)
            plaintext = add_mod(share, other, q)
            np.testing.assert_array_equal(plaintext, found.vectors[(HMSS, edp_id)])
            recombined.add(edp_id)
    assert recombined == set(EDPS)

    # --- TrusTee: the vectors are stored under envelope encryption; the EDPs' KMS key opens them
    # to the canaries. The data keys and every KEK are secrets.
    opened: set[str] = set()
    kms = LocalFileKmsClient()
    for duchy in duchies.values():
        trustee = [c for c in duchy.computations() if c.protocol == TRUSTEE]
        for computation in trustee:
            for requisition in computation.requisitions:
                if not requisition.path:
                    continue
                envelope = requisition.details.protocol.trus_tee
                assert envelope.encrypted_dek_ciphertext, "TrusTee data must be envelope-encrypted"
                dek = open_envelope(kms, envelope.kms_kek_uri, envelope.encrypted_dek_ciphertext)
                for material in handle_secrets(dek._handle):
                    secrets.add(f"TrusTee DEK of {requisition.external_id}", material)
                vector = b"".join(dek.decrypt_chunks([duchy.requisition_blob(requisition)]))
                edp_id = next(
                    e
                    for e in EDPS
                    if vector == found.vectors[(TRUSTEE, e)].astype(np.uint8).tobytes()
                )
                opened.add(edp_id)
    assert opened == set(EDPS)
    for duchy in duchies.values():
        for material in keyset_secrets(duchy.kek_file.read_bytes()):
            secrets.add(f"{duchy.duchy_id} KEK", material)
    for material in keyset_secrets((edp_kek_dir / "kek.tink").read_bytes()):
        secrets.add("EDP KMS KEK", material)

    # --- every party's long-lived private keys: never in a log line.
    for principal in PkiSpec().principals():
        files = dev_pki.party(principal)
        for path, loader in (
            (files.tls_key, load_pem_private_key),
            (files.cs_key, load_der_private_key),
        ):
            private = loader(path.read_bytes(), password=None)
            assert isinstance(private, ec.EllipticCurvePrivateKey)
            for form in scalar_forms(private.private_numbers().private_value):
                logged_only.add(f"{principal.resource_name} {path.name}", form)
        if principal.kind in (PrincipalKind.DATA_PROVIDER, PrincipalKind.MEASUREMENT_CONSUMER):
            keyset = dev_pki.encryption_keys(principal).private_keyset.read_bytes()
            for material in keyset_secrets(keyset):
                logged_only.add(f"{principal.resource_name} encryption key", material)

    # --- the searches.
    problems: list[str] = []
    for duchy in duchies.values():
        storage = duchy.storage()
        assert any(where.endswith(".db") for where, _ in storage)
        assert any("/blobs/" in where for where, _ in storage)
        problems += violations(
            f"plaintext in {duchy.duchy_id}'s storage", found.plaintext.find_all(storage)
        )
        problems += violations(
            f"secret in clear in {duchy.duchy_id}'s storage", secrets.find_all(storage)
        )
    # The logs were captured: they hold every computation's progress.
    text = logs.decode(errors="replace")
    assert "stage started" in text
    assert "--- Logging error ---" not in text, "a log line was lost: " + text[:2000]
    for computation in duchies["aggregator"].computations():
        assert computation.global_id in text, computation.global_id
    problems += violations("key material in the logs", secrets.find(logs, "logs"))
    problems += violations("key material in the logs", logged_only.find(logs, "logs"))
    problems += violations("plaintext in the logs", found.plaintext.find(logs, "logs"))
    assert not problems, "\n".join(problems)
