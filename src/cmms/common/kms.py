"""Key-encryption-key sources, chosen by key URI (hmss spec §A.2, §B.3, §B.5).

- `local-kms://<absolute path>`: a cleartext binary Tink AEAD keyset in a file, for development
  (the reference's `--key-encryption-key-file`).
- `gcp-kms://projects/…/cryptoKeys/…` and `aws-kms://arn:aws:kms:…`: cloud KMS keys through Tink's
  integrations. Their SDKs are imported and their clients built only when such a URI is used.

Every client satisfies `cmms.crypto.keystore.KmsClient`; `KmsRegistry` combines several.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import tink

from cmms.common.errors import UserError
from cmms.crypto.errors import InvalidKeyError
from cmms.crypto.keystore import Aead, KmsClient, aead_from_cleartext_keyset, generate_kek_keyset

LOCAL_KMS_PREFIX = "local-kms://"
GCP_KMS_PREFIX = "gcp-kms://"
AWS_KMS_PREFIX = "aws-kms://"


class KmsError(UserError):
    """A KEK URI that no client can serve, or a KMS client that cannot be set up."""


# --- local file KMS ------------------------------------------------------------------------------


def local_kms_uri(path: Path) -> str:
    """The `local-kms://` URI of a KEK file."""
    return f"{LOCAL_KMS_PREFIX}{path.resolve()}"


def create_local_kek_file(path: Path) -> str:
    """Write a fresh AES256-GCM KEK keyset to `path` (owner-only, never overwriting); return its URI."""
    keyset = generate_kek_keyset()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KmsError(f"KEK file {path} already exists; refusing to overwrite it") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(keyset)
    return local_kms_uri(path)


class LocalFileKmsClient:
    """Serves `local-kms://<absolute path>` from cleartext keyset files."""

    def supports(self, key_uri: str) -> bool:
        return key_uri.startswith(LOCAL_KMS_PREFIX)

    def get_aead(self, key_uri: str) -> Aead:
        if not self.supports(key_uri):
            raise KmsError(f"not a {LOCAL_KMS_PREFIX} URI: {key_uri}")
        path = Path(key_uri[len(LOCAL_KMS_PREFIX) :])
        if not path.is_absolute():
            raise KmsError(f"{LOCAL_KMS_PREFIX} needs an absolute path, got {key_uri}")
        try:
            keyset = path.read_bytes()
        except OSError as exc:
            raise KmsError(f"cannot read KEK file {path}: {exc.strerror or exc}") from exc
        try:
            return aead_from_cleartext_keyset(keyset)
        except InvalidKeyError as exc:
            raise KmsError(f"KEK file {path} is not a Tink AEAD keyset") from exc


# --- cloud KMS -----------------------------------------------------------------------------------


class GcpKmsClient:
    """Serves `gcp-kms://` URIs with Google Cloud KMS, built on first use.

    Credentials: an explicit `google.auth` credentials object, a service-account file, or (neither)
    the environment's default credentials. `kms_client_factory` replaces the
    `KeyManagementServiceClient` (e.g. one with workload-identity credentials, or a test double).
    """

    def __init__(
        self,
        *,
        credentials: Any = None,
        credentials_path: str | None = None,
        kms_client_factory: Callable[[], Any] | None = None,
    ) -> None:
        if credentials is not None and credentials_path is not None:
            raise KmsError("give GCP KMS credentials or a credentials file, not both")
        self._credentials = credentials
        self._credentials_path = credentials_path
        self._kms_client_factory = kms_client_factory
        self._tink_client: Any = None

    def supports(self, key_uri: str) -> bool:
        return key_uri.startswith(GCP_KMS_PREFIX)

    def _client(self) -> Any:
        if self._tink_client is not None:
            return self._tink_client
        try:
            from google.auth import exceptions as auth_exceptions
            from tink.integration import gcpkms
        except ImportError as exc:
            raise KmsError(
                "GCP KMS support needs the gcp extra (pip install 'halo-cmms[gcp]')"
            ) from exc
        try:
            if self._kms_client_factory is not None:
                client = gcpkms.new_client(kms_v1_client=self._kms_client_factory())
            else:
                client = gcpkms.GcpKmsClient(
                    None, self._credentials_path, credentials=self._credentials
                )
        except auth_exceptions.DefaultCredentialsError as exc:
            raise KmsError(f"no usable GCP credentials for Cloud KMS: {exc}") from exc
        except (OSError, ValueError) as exc:
            raise KmsError(
                f"cannot load GCP credentials from {self._credentials_path}: {exc}"
            ) from exc
        self._tink_client = client
        return client

    def get_aead(self, key_uri: str) -> Aead:
        if not self.supports(key_uri):
            raise KmsError(f"not a {GCP_KMS_PREFIX} URI: {key_uri}")
        try:
            kms_aead: Aead = self._client().get_aead(key_uri)
        except tink.TinkError as exc:
            raise KmsError(f"invalid GCP KMS key URI {key_uri}: {exc}") from exc
        return kms_aead


class AwsKmsClient:
    """Serves `aws-kms://arn:aws:kms:<region>:…` URIs with AWS KMS, built on first use.

    `boto3_client_factory(region)` replaces the default boto3 KMS client (e.g. one with assumed-role
    credentials, or a stubbed client in tests); otherwise credentials come from `credentials_path`
    or boto3's default chain.
    """

    def __init__(
        self,
        *,
        credentials_path: str | None = None,
        boto3_client_factory: Callable[[str], Any] | None = None,
    ) -> None:
        self._credentials_path = credentials_path
        self._boto3_client_factory = boto3_client_factory

    def supports(self, key_uri: str) -> bool:
        return key_uri.startswith(AWS_KMS_PREFIX)

    def get_aead(self, key_uri: str) -> Aead:
        if not self.supports(key_uri):
            raise KmsError(f"not an {AWS_KMS_PREFIX} URI: {key_uri}")
        try:
            from tink.integration import awskms
        except ImportError as exc:
            raise KmsError(
                "AWS KMS support needs the aws extra (pip install 'halo-cmms[aws]')"
            ) from exc
        arn_parts = key_uri[len(AWS_KMS_PREFIX) :].split(":")
        if len(arn_parts) < 6 or arn_parts[:3] != ["arn", "aws", "kms"] or not arn_parts[3]:
            raise KmsError(f"invalid AWS KMS key URI {key_uri}: expected aws-kms://arn:aws:kms:…")
        try:
            if self._boto3_client_factory is not None:
                client = awskms.new_client(boto3_client=self._boto3_client_factory(arn_parts[3]))
            else:
                client = awskms.AwsKmsClient(None, self._credentials_path)
            kms_aead: Aead = client.get_aead(key_uri)
        except tink.TinkError as exc:
            raise KmsError(f"invalid AWS KMS key URI {key_uri}: {exc}") from exc
        except ValueError as exc:
            raise KmsError(
                f"cannot load AWS credentials from {self._credentials_path}: {exc}"
            ) from exc
        return kms_aead


# --- registry ------------------------------------------------------------------------------------


class KmsRegistry:
    """Routes each key URI to the first registered client that supports it."""

    def __init__(self, clients: Iterable[KmsClient] = ()) -> None:
        self._clients = list(clients)

    def register(self, client: KmsClient) -> None:
        """Add `client`; earlier registrations win."""
        self._clients.append(client)

    def supports(self, key_uri: str) -> bool:
        return any(client.supports(key_uri) for client in self._clients)

    def get_aead(self, key_uri: str) -> Aead:
        for client in self._clients:
            if client.supports(key_uri):
                return client.get_aead(key_uri)
        raise KmsError(f"no KMS client supports key URI {key_uri!r}")


def default_kms_registry(
    *,
    gcp_credentials: Any = None,
    gcp_credentials_path: str | None = None,
    aws_credentials_path: str | None = None,
) -> KmsRegistry:
    """Local files, GCP and AWS; the cloud clients stay unbuilt until their URIs are used."""
    return KmsRegistry(
        [
            LocalFileKmsClient(),
            GcpKmsClient(credentials=gcp_credentials, credentials_path=gcp_credentials_path),
            AwsKmsClient(credentials_path=aws_credentials_path),
        ]
    )
