"""`cmms certs`: Development PKI: root CAs, TLS and consent-signaling certificates, trust config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cmms.common import pki

app = typer.Typer(
    name="certs",
    help="Development PKI: root CAs, TLS and consent-signaling certificates, trust config.",
    no_args_is_help=True,
)


@app.command("generate")
def generate(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the PKI into.")],
    duchies: Annotated[str, typer.Option(help="Comma-separated duchy ids.")] = ",".join(
        pki.DEFAULT_DUCHIES
    ),
    data_providers: Annotated[
        str, typer.Option(help="Comma-separated data provider (EDP) ids.")
    ] = ",".join(pki.DEFAULT_DATA_PROVIDERS),
    measurement_consumers: Annotated[
        str, typer.Option(help="Comma-separated measurement consumer ids.")
    ] = ",".join(pki.DEFAULT_MEASUREMENT_CONSUMERS),
    force: Annotated[bool, typer.Option(help="Replace an existing PKI in --out.")] = False,
) -> None:
    """Write a development PKI: one root CA per party (and the Kingdom) with leaves under it.

    \b
    Files, for each party P (each id given, plus `kingdom`):
      P_root.pem, P_root.key          self-signed root CA (EC P-256) and its key
      P_tls.pem, P_tls.key            TLS server+client certificate issued by P_root
                                      (SAN localhost, 127.0.0.1) and its PKCS#8 PEM key
      P_cs_cert.der, P_cs_private.der consent-signaling certificate (DER) and PKCS#8 DER key
      P_enc_private.tink,             consumers and providers only: Tink ECIES P-256
      P_enc_public.tink               hybrid key pair (binary keysets)
    and once:
      all_root_certs.pem              every root: the TLS trust bundle
      trust_config.json               root SKID (hex) -> principal, e.g. duchies/worker1

    Refuses to touch a directory that already holds any of these files unless --force is given.
    """
    spec = pki.PkiSpec(
        duchies=pki.parse_id_list(duchies),
        data_providers=pki.parse_id_list(data_providers),
        measurement_consumers=pki.parse_id_list(measurement_consumers),
    )
    layout = pki.generate_pki(out, spec, force=force)
    typer.echo(f"wrote a PKI for {len(spec.principals())} parties to {layout.directory}")
