"""Development PKI: one root CA per party, a TLS leaf and a consent-signaling leaf under each.

Files written into the output directory, for every party `{p}` (a duchy, data provider or
measurement consumer id, or `kingdom`):

    {p}_root.pem          self-signed root CA (EC P-256, ecdsa-with-SHA256, CA:TRUE, SKI, self AKI)
    {p}_root.key          the root's private key (PKCS#8 PEM)
    {p}_tls.pem           TLS leaf issued directly by {p}_root (AKI = root SKI; SAN localhost and
                          127.0.0.1; EKU serverAuth + clientAuth): both server and client certificate
    {p}_tls.key           its private key (PKCS#8 PEM)
    {p}_cs_cert.der       consent-signaling leaf issued by {p}_root (DER)
    {p}_cs_private.der    its private key (PKCS#8 DER)

measurement consumers and data providers also get a Tink hybrid key pair (ECIES P-256, the
template the reference's test keys use) for what is encrypted to them:

    {p}_enc_private.tink  binary cleartext private keyset
    {p}_enc_public.tink   binary public keyset (the EncryptionPublicKey `data`)

and once:

    all_root_certs.pem    every root certificate: the TLS trust bundle
    trust_config.json     root SKID (hex) -> principal (see `cmms.common.identity`)

Private keys are written unencrypted with mode 0600: this PKI is for development and tests only.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from cmms.common import x509 as x509_utils
from cmms.common.errors import UserError
from cmms.common.identity import Principal, PrincipalKind, TrustConfig
from cmms.crypto.hybrid import ECIES_P256, HybridPrivateKey

TLS_DNS_NAMES = ("localhost",)
TLS_IP_ADDRESSES = ("127.0.0.1",)
ALL_ROOT_CERTS_FILE = "all_root_certs.pem"
TRUST_CONFIG_FILE = "trust_config.json"

DEFAULT_DUCHIES = ("worker1", "worker2", "aggregator")
DEFAULT_DATA_PROVIDERS = ("edp1", "edp2", "edp3")
DEFAULT_MEASUREMENT_CONSUMERS = ("mc1",)
ENCRYPTION_PRIVATE_KEY_SUFFIX = "_enc_private.tink"
ENCRYPTION_PUBLIC_KEY_SUFFIX = "_enc_public.tink"
# Parties that things are encrypted to (requisition specs, results); duchies make per-computation keys.
ENCRYPTION_KEY_KINDS = frozenset({PrincipalKind.MEASUREMENT_CONSUMER, PrincipalKind.DATA_PROVIDER})


@dataclass(frozen=True)
class PartyFiles:
    """Where one party's keys and certificates live."""

    principal: Principal
    root_cert: Path
    root_key: Path
    tls_cert: Path
    tls_key: Path
    cs_cert: Path
    cs_key: Path

    def all(self) -> tuple[Path, ...]:
        """Every file of this party."""
        return (
            self.root_cert,
            self.root_key,
            self.tls_cert,
            self.tls_key,
            self.cs_cert,
            self.cs_key,
        )


@dataclass(frozen=True)
class EncryptionKeyFiles:
    """Where a party's hybrid encryption key pair lives."""

    private_keyset: Path
    public_keyset: Path

    def all(self) -> tuple[Path, ...]:
        return (self.private_keyset, self.public_keyset)


@dataclass(frozen=True)
class PkiLayout:
    """The predictable file names of a development PKI directory."""

    directory: Path

    @property
    def all_root_certs(self) -> Path:
        """The bundle of every party's root certificate (PEM)."""
        return self.directory / ALL_ROOT_CERTS_FILE

    @property
    def trust_config(self) -> Path:
        """The root SKID -> principal map (JSON)."""
        return self.directory / TRUST_CONFIG_FILE

    def party(self, principal: Principal) -> PartyFiles:
        """The files of `principal`, named after its id (`kingdom` for the Kingdom)."""
        stem = self.directory / principal.id
        return PartyFiles(
            principal=principal,
            root_cert=Path(f"{stem}_root.pem"),
            root_key=Path(f"{stem}_root.key"),
            tls_cert=Path(f"{stem}_tls.pem"),
            tls_key=Path(f"{stem}_tls.key"),
            cs_cert=Path(f"{stem}_cs_cert.der"),
            cs_key=Path(f"{stem}_cs_private.der"),
        )

    def encryption_keys(self, principal: Principal) -> EncryptionKeyFiles:
        """The files of `principal`'s hybrid encryption key pair (MCs and EDPs only have one)."""
        stem = self.directory / principal.id
        return EncryptionKeyFiles(
            private_keyset=Path(f"{stem}{ENCRYPTION_PRIVATE_KEY_SUFFIX}"),
            public_keyset=Path(f"{stem}{ENCRYPTION_PUBLIC_KEY_SUFFIX}"),
        )

    def load_trust_config(self) -> TrustConfig:
        """Read `trust_config.json`."""
        return TrustConfig.load(self.trust_config)


@dataclass(frozen=True)
class PkiSpec:
    """Which parties get certificates (the Kingdom always does)."""

    duchies: tuple[str, ...] = DEFAULT_DUCHIES
    data_providers: tuple[str, ...] = DEFAULT_DATA_PROVIDERS
    measurement_consumers: tuple[str, ...] = DEFAULT_MEASUREMENT_CONSUMERS

    def principals(self) -> tuple[Principal, ...]:
        """Every party, Kingdom first; raises `UserError` on a bad or repeated id."""
        try:
            principals = (
                Principal.kingdom(),
                *(Principal.duchy(i) for i in self.duchies),
                *(Principal.data_provider(i) for i in self.data_providers),
                *(Principal.measurement_consumer(i) for i in self.measurement_consumers),
            )
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        seen: set[str] = set()
        for principal in principals:
            # File names use the bare id, so ids must be unique across kinds too.
            if principal.id in seen:
                raise UserError(f"party id {principal.id!r} is used more than once")
            seen.add(principal.id)
        return principals


def parse_id_list(text: str) -> tuple[str, ...]:
    """`"a, b,c"` -> `("a", "b", "c")`; empty items are dropped."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def generate_pki(
    directory: Path,
    spec: PkiSpec = PkiSpec(),
    *,
    force: bool = False,
    now: datetime.datetime | None = None,
) -> PkiLayout:
    """Write a development PKI for `spec` into `directory` (created if missing).

    Raises `UserError`, before writing anything, if the directory already holds any file this
    would write and `force` is false.
    """
    principals = spec.principals()
    layout = PkiLayout(directory)
    targets = [layout.all_root_certs, layout.trust_config]
    targets += [path for p in principals for path in layout.party(p).all()]
    targets += [
        path
        for p in principals
        if p.kind in ENCRYPTION_KEY_KINDS
        for path in layout.encryption_keys(p).all()
    ]
    existing = [path for path in targets if path.exists()]
    if existing and not force:
        raise UserError(
            f"{directory} already holds a PKI ({existing[0].name} exists); pass --force to replace it"
        )
    issued_at = now or datetime.datetime.now(datetime.UTC)
    directory.mkdir(parents=True, exist_ok=True)
    roots: list[tuple[Principal, bytes]] = []
    for principal in principals:
        roots.append((principal, _write_party(layout.party(principal), issued_at)))
        if principal.kind in ENCRYPTION_KEY_KINDS:
            _write_encryption_keys(layout.encryption_keys(principal))
    _write(layout.all_root_certs, b"".join(pem for _, pem in roots))
    _write(layout.trust_config, TrustConfig.from_root_certificates(roots).to_json().encode())
    return layout


def _write_party(files: PartyFiles, now: datetime.datetime) -> bytes:
    """Write one party's six files and return its root certificate PEM."""
    label = files.principal.resource_name
    root_key = x509_utils.generate_ec_key()
    root = x509_utils.build_root_certificate(root_key, f"{label} root CA", now=now)
    tls_key = x509_utils.generate_ec_key()
    tls = _leaf(tls_key, f"{label} TLS", root, root_key, x509_utils.LeafPurpose.TLS, now)
    cs_key = x509_utils.generate_ec_key()
    cs = _leaf(
        cs_key,
        f"{label} consent signaling",
        root,
        root_key,
        x509_utils.LeafPurpose.CONSENT_SIGNALING,
        now,
    )
    root_pem = x509_utils.certificate_pem(root)
    _write(files.root_cert, root_pem)
    _write(files.root_key, x509_utils.private_key_pem(root_key), secret=True)
    _write(files.tls_cert, x509_utils.certificate_pem(tls))
    _write(files.tls_key, x509_utils.private_key_pem(tls_key), secret=True)
    _write(files.cs_cert, x509_utils.certificate_der(cs))
    _write(files.cs_key, x509_utils.private_key_der(cs_key), secret=True)
    return root_pem


def _write_encryption_keys(files: EncryptionKeyFiles) -> None:
    """A fresh ECIES P-256 keyset: the private one in clear (development only) and its public half."""
    key = HybridPrivateKey.generate(ECIES_P256)
    _write(files.private_keyset, key.cleartext_keyset(), secret=True)
    _write(files.public_keyset, key.public_key().keyset())


def _leaf(
    key: ec.EllipticCurvePrivateKey,
    common_name: str,
    root: x509.Certificate,
    root_key: ec.EllipticCurvePrivateKey,
    purpose: x509_utils.LeafPurpose,
    now: datetime.datetime,
) -> x509.Certificate:
    is_tls = purpose is x509_utils.LeafPurpose.TLS
    return x509_utils.build_leaf_certificate(
        key.public_key(),
        common_name,
        issuer=root,
        issuer_key=root_key,
        purpose=purpose,
        now=now,
        dns_names=TLS_DNS_NAMES if is_tls else (),
        ip_addresses=TLS_IP_ADDRESSES if is_tls else (),
    )


def _write(path: Path, data: bytes, *, secret: bool = False) -> None:
    mode = 0o600 if secret else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    # O_CREAT's mode does not apply to a file that already existed (the --force case).
    os.chmod(path, mode)


def principals_of_kind(layout: PkiLayout, kind: PrincipalKind) -> Sequence[Principal]:
    """The principals of `kind` in the PKI's trust config, sorted by id."""
    return sorted(
        (p for p in layout.load_trust_config().principals if p.kind is kind), key=lambda p: p.id
    )
