"""KEK sources by URI: local files, lazily built cloud clients (never contacted here), a registry."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from cmms.common.kms import (
    AwsKmsClient,
    GcpKmsClient,
    KmsError,
    KmsRegistry,
    LocalFileKmsClient,
    create_local_kek_file,
    default_kms_registry,
    local_kms_uri,
)
from cmms.crypto.envelope import new_envelope, open_envelope
from cmms.crypto.hybrid import HPKE_X25519, HybridPrivateKey
from cmms.crypto.keystore import KmsClient, unwrap_private_key, wrap_private_key

AWS_KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
GCP_KEY_URI = "gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k"


@pytest.fixture
def no_cloud_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Make any accidental credential lookup fail fast and offline."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing-adc.json"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "missing-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "missing-aws-credentials"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


# --- local file KMS ------------------------------------------------------------------------------


def test_keystore_round_trip_with_a_local_kek_file(tmp_path: Path) -> None:
    uri = create_local_kek_file(tmp_path / "worker1_kek.tink")
    assert uri == f"local-kms://{tmp_path / 'worker1_kek.tink'}"
    kms = LocalFileKmsClient()
    private_key = HybridPrivateKey.generate(HPKE_X25519)
    wrapped = wrap_private_key(private_key, kms.get_aead(uri))
    restored = unwrap_private_key(wrapped, kms.get_aead(uri))
    assert restored.decrypt(private_key.public_key().encrypt(b"seed")) == b"seed"


def test_kek_file_is_owner_only_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "kek.tink"
    create_local_kek_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    with pytest.raises(KmsError, match="already exists"):
        create_local_kek_file(path)
    assert path.read_bytes() == before


def test_local_uri_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert local_kms_uri(Path("kek.tink")) == f"local-kms://{tmp_path / 'kek.tink'}"
    with pytest.raises(KmsError, match="absolute path"):
        LocalFileKmsClient().get_aead("local-kms://kek.tink")


def test_missing_or_bad_local_kek_file_is_a_clear_error(tmp_path: Path) -> None:
    kms = LocalFileKmsClient()
    with pytest.raises(KmsError, match="cannot read KEK file"):
        kms.get_aead(local_kms_uri(tmp_path / "absent.tink"))
    junk = tmp_path / "junk.tink"
    junk.write_bytes(b"not a keyset")
    with pytest.raises(KmsError, match="not a Tink AEAD keyset"):
        kms.get_aead(local_kms_uri(junk))


def test_local_client_supports_only_its_prefix() -> None:
    kms = LocalFileKmsClient()
    assert kms.supports("local-kms:///tmp/k")
    assert not kms.supports(GCP_KEY_URI)
    assert isinstance(kms, KmsClient)


# --- registry ------------------------------------------------------------------------------------


def test_registry_routes_by_prefix(tmp_path: Path) -> None:
    uri = create_local_kek_file(tmp_path / "kek.tink")
    registry = default_kms_registry()
    assert registry.supports(uri)
    assert registry.supports(GCP_KEY_URI)
    assert registry.supports(f"aws-kms://{AWS_KEY_ARN}")
    assert not registry.supports("vault://x")
    dek, encrypted_dek = new_envelope(registry, uri)
    ciphertext = list(dek.encrypt_chunks([b"frequency vector"]))
    assert b"".join(open_envelope(registry, uri, encrypted_dek).decrypt_chunks(ciphertext)) == (
        b"frequency vector"
    )


def test_registry_rejects_unknown_schemes() -> None:
    with pytest.raises(KmsError, match="no KMS client supports"):
        KmsRegistry([LocalFileKmsClient()]).get_aead("vault://x")


def test_registry_prefers_earlier_clients() -> None:
    class Claims:
        def __init__(self, label: str) -> None:
            self.label = label
            self.asked = 0

        def supports(self, key_uri: str) -> bool:
            return True

        def get_aead(self, key_uri: str) -> Any:
            self.asked += 1
            return self.label

    first, second = Claims("first"), Claims("second")
    registry = KmsRegistry([first])
    registry.register(second)
    assert registry.get_aead("any://k") == "first"
    assert (first.asked, second.asked) == (1, 0)


def test_default_registry_builds_no_cloud_client_until_used(no_cloud_credentials: None) -> None:
    # Constructing it must not need credentials or the network.
    registry = default_kms_registry()
    assert isinstance(registry, KmsClient)


# --- GCP -----------------------------------------------------------------------------------------


def test_gcp_client_is_built_lazily_with_the_injected_factory() -> None:
    built: list[object] = []

    def factory() -> object:
        built.append(object())
        return built[-1]

    kms = GcpKmsClient(kms_client_factory=factory)
    assert kms.supports(GCP_KEY_URI)
    assert built == []
    kms_aead = kms.get_aead(GCP_KEY_URI)
    kms.get_aead(GCP_KEY_URI)
    assert len(built) == 1  # built once, then reused
    assert callable(kms_aead.encrypt)


def test_gcp_without_credentials_is_a_clear_error(no_cloud_credentials: None) -> None:
    with pytest.raises(KmsError, match="no usable GCP credentials"):
        GcpKmsClient().get_aead(GCP_KEY_URI)


def test_gcp_with_a_missing_credentials_file_is_a_clear_error(tmp_path: Path) -> None:
    kms = GcpKmsClient(credentials_path=str(tmp_path / "missing.json"))
    with pytest.raises(KmsError, match="cannot load GCP credentials"):
        kms.get_aead(GCP_KEY_URI)


def test_gcp_rejects_malformed_key_uris() -> None:
    kms = GcpKmsClient(kms_client_factory=object)
    with pytest.raises(KmsError, match="invalid GCP KMS key URI"):
        kms.get_aead("gcp-kms://not/a/key")
    with pytest.raises(KmsError, match="not a gcp-kms"):
        kms.get_aead(f"aws-kms://{AWS_KEY_ARN}")


def test_gcp_credentials_and_file_are_exclusive() -> None:
    with pytest.raises(KmsError, match="not both"):
        GcpKmsClient(credentials=object(), credentials_path="/x.json")


# --- AWS -----------------------------------------------------------------------------------------


def _stubbed_kms_client(region: str) -> Any:
    return boto3.client(
        "kms",
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def test_aws_client_encrypts_through_boto3_with_the_key_arn() -> None:
    clients: list[Any] = []

    def factory(region: str) -> Any:
        client = _stubbed_kms_client(region)
        stubber = Stubber(client)
        stubber.add_response(
            "encrypt",
            {"CiphertextBlob": b"sealed", "KeyId": AWS_KEY_ARN},
            {"KeyId": AWS_KEY_ARN, "Plaintext": b"dek", "EncryptionContext": {}},
        )
        stubber.activate()
        clients.append((region, stubber))
        return client

    kms_aead = AwsKmsClient(boto3_client_factory=factory).get_aead(f"aws-kms://{AWS_KEY_ARN}")
    assert kms_aead.encrypt(b"dek", b"") == b"sealed"
    region, stubber = clients[0]
    assert region == "eu-west-1"
    stubber.assert_no_pending_responses()


def test_aws_default_client_is_built_offline(no_cloud_credentials: None) -> None:
    # boto3 creates clients without contacting AWS; only an encrypt/decrypt call would.
    kms_aead = AwsKmsClient().get_aead(f"aws-kms://{AWS_KEY_ARN}")
    assert callable(kms_aead.decrypt)


def test_aws_rejects_malformed_key_uris() -> None:
    kms = AwsKmsClient(boto3_client_factory=_stubbed_kms_client)
    with pytest.raises(KmsError, match="invalid AWS KMS key URI"):
        kms.get_aead("aws-kms://not-an-arn")
    with pytest.raises(KmsError, match="not an aws-kms"):
        kms.get_aead(GCP_KEY_URI)


def test_aws_with_a_bad_credentials_file_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "aws-credentials"
    config.write_text("[other]\n")
    with pytest.raises(KmsError, match="cannot load AWS credentials"):
        AwsKmsClient(credentials_path=str(config)).get_aead(f"aws-kms://{AWS_KEY_ARN}")
