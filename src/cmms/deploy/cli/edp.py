"""`cmms edp`: Event data provider tools: simulate a publisher that fulfils requisitions."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from cmms.common.errors import UserError

app = typer.Typer(
    name="edp",
    help="Event data provider tools: simulate a publisher that fulfils requisitions.",
    no_args_is_help=True,
)

_ENV_PREFIX = "CMMS_EDP_"


def _env(field: str) -> str:
    return _ENV_PREFIX + field.upper()


def _option(*names: str, field: str, help: str = "") -> Any:
    return typer.Option(*names, envvar=_env(field), help=help)


def _parse_weights(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(item) for item in text.split(",") if item.strip())
    except ValueError as exc:
        raise UserError(
            f"--frequency-weights: expected comma-separated numbers, got {text!r}"
        ) from exc


@app.command("simulate")
def simulate(
    edp_id: Annotated[str, _option("--edp-id", field="edp_id", help="This EDP's id, e.g. edp1.")],
    endpoints: Annotated[
        Path | None,
        _option(
            "--endpoints",
            field="endpoints_file",
            help="endpoints.json of a running system: default Kingdom and duchy targets, PKI dir "
            "and consumers.",
        ),
    ] = None,
    kingdom_target: Annotated[
        str | None,
        _option("--kingdom-target", field="kingdom_target", help="Kingdom public API host:port."),
    ] = None,
    duchy_target: Annotated[
        list[str] | None,
        _option(
            "--duchy-target",
            field="duchy_targets",
            help="DUCHY=HOST:PORT of a duchy's RequisitionFulfillment service (repeatable).",
        ),
    ] = None,
    tls_server_name: Annotated[
        str | None,
        _option("--tls-server-name", field="tls_server_name", help="Expected server TLS name."),
    ] = None,
    pki_dir: Annotated[
        Path | None, _option("--pki-dir", field="pki_dir", help="`cmms certs generate` directory.")
    ] = None,
    tls_cert: Annotated[Path | None, _option("--tls-cert", field="tls_cert_file")] = None,
    tls_key: Annotated[Path | None, _option("--tls-key", field="tls_key_file")] = None,
    trusted_roots: Annotated[
        Path | None, _option("--trusted-roots", field="trusted_roots_file", help="Root bundle PEM.")
    ] = None,
    trust_config: Annotated[
        Path | None,
        _option("--trust-config", field="trust_config_file", help="Root SKID -> party JSON."),
    ] = None,
    signing_key: Annotated[
        Path | None,
        _option(
            "--signing-key", field="signing_key_file", help="Consent-signaling key (PKCS#8 DER)."
        ),
    ] = None,
    encryption_key: Annotated[
        Path | None,
        _option(
            "--encryption-key",
            field="encryption_private_keyset_file",
            help="Tink private keyset RequisitionSpecs are encrypted to.",
        ),
    ] = None,
    measurement_consumer: Annotated[
        list[str] | None,
        _option(
            "--measurement-consumer",
            field="measurement_consumers",
            help="measurementConsumers/{id} to create an event group for (repeatable).",
        ),
    ] = None,
    population_seed: Annotated[
        int | None, _option("--population-seed", field="population_seed")
    ] = None,
    population_size: Annotated[
        int | None, _option("--population-size", field="population_size")
    ] = None,
    first_vid: Annotated[int | None, _option("--first-vid", field="first_vid")] = None,
    reach_fraction: Annotated[
        float | None,
        _option(
            "--reach-fraction", field="reach_fraction", help="Share of the population reached."
        ),
    ] = None,
    overlap: Annotated[
        float | None,
        _option(
            "--overlap",
            field="overlap",
            help="Share of the audience drawn from the audience shared by all EDPs (0..1).",
        ),
    ] = None,
    frequency_weights: Annotated[
        str | None,
        _option(
            "--frequency-weights",
            field="frequency_weights",
            help="Comma-separated weights of 1, 2, ... impressions per reached VID.",
        ),
    ] = None,
    poll_interval: Annotated[
        float | None, _option("--poll-interval", field="poll_interval_seconds", help="Seconds.")
    ] = None,
    hmss: Annotated[
        bool | None, _option("--hmss/--no-hmss", field="hmss_supported", help="Advertise HMSS.")
    ] = None,
    trustee: Annotated[
        bool | None,
        _option("--trustee/--no-trustee", field="trustee_supported", help="Advertise TrusTee."),
    ] = None,
    kms_kek_uri: Annotated[
        str | None,
        _option(
            "--kms-kek-uri",
            field="kms_kek_uri",
            help="KEK that seals TrusTee payloads (local-kms://PATH, gcp-kms://..., aws-kms://...); "
            "without it TrusTee payloads go unencrypted.",
        ),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Poll once, then exit.")] = False,
) -> None:
    """Run a simulated EDP: declare capabilities, then fulfil or refuse each requisition once.

    Every flag can also be set with CMMS_EDP_<FIELD> (e.g. CMMS_EDP_KINGDOM_TARGET).
    """
    from pydantic import ValidationError

    from cmms.clients.edp.runner import run
    from cmms.clients.edp.settings import EdpSettings
    from cmms.clients.endpoints import Endpoints

    given: dict[str, Any] = {
        "edp_id": edp_id,
        "kingdom_target": kingdom_target,
        "duchy_targets": tuple(duchy_target) if duchy_target else None,
        "tls_server_name": tls_server_name,
        "pki_dir": pki_dir,
        "tls_cert_file": tls_cert,
        "tls_key_file": tls_key,
        "trusted_roots_file": trusted_roots,
        "trust_config_file": trust_config,
        "signing_key_file": signing_key,
        "encryption_private_keyset_file": encryption_key,
        "measurement_consumers": tuple(measurement_consumer) if measurement_consumer else None,
        "population_seed": population_seed,
        "population_size": population_size,
        "first_vid": first_vid,
        "reach_fraction": reach_fraction,
        "overlap": overlap,
        "frequency_weights": _parse_weights(frequency_weights) if frequency_weights else None,
        "poll_interval_seconds": poll_interval,
        "hmss_supported": hmss,
        "trustee_supported": trustee,
        "kms_kek_uri": kms_kek_uri,
    }
    if endpoints is not None:
        system = Endpoints.load(endpoints)
        defaults: dict[str, Any] = {
            "kingdom_target": system.kingdom.public_api,
            "duchy_targets": tuple(
                f"{duchy}={target}"
                for duchy, target in system.requisition_fulfillment_targets().items()
            ),
            "tls_server_name": system.tls_server_name,
            "pki_dir": system.pki_dir,
            "measurement_consumers": tuple(
                f"measurementConsumers/{mc}" for mc in system.measurement_consumers
            ),
        }
        for key, value in defaults.items():
            if given[key] is None:
                given[key] = value
    try:
        settings = EdpSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        # One line: the CLI prints only the first line of an error.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise UserError(f"invalid EDP settings: {problems}") from exc
    import grpc

    from cmms.common.logging import configure_logging

    configure_logging()
    try:
        handled = asyncio.run(_run_until_signal(run, settings, once))
    except grpc.aio.AioRpcError as exc:
        raise UserError(f"Kingdom call failed: {exc.code().name}: {exc.details()}") from exc
    if once:
        typer.echo(f"handled {handled} requisition(s)")


async def _run_until_signal(run: Any, settings: Any, once: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        result: int = await run(settings, stop, once=once)
        return result
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
