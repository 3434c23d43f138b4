"""The command line of every process of a local system, as `cmms` subcommands.

Each server gets its mTLS port, a plaintext gRPC health port (what the supervisor probes) and an
HTTP `/healthz` + `/metrics` port; everything binds to loopback.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from cmms.common.durations import format_duration
from cmms.common.identity import Principal
from cmms.common.kms import local_kms_uri
from cmms.deploy.local.layout import LocalLayout
from cmms.deploy.local.options import LocalOptions
from cmms.deploy.local.ports import LOOPBACK, PortPool
from cmms.deploy.local.probes import EventGroupsProbe, GrpcHealthProbe, HttpHealthProbe
from cmms.deploy.local.routing import MEASUREMENT_CONSUMERS
from cmms.deploy.local.supervisor import ChildSpec

# Shorter than the servers' default: on one machine nothing is in flight for long.
SHUTDOWN_GRACE_SECONDS = 5.0
# A finished mill job's log is where its stage timings are; keep them all.
MILL_JOB_HISTORY = 100_000
# Kingdom stream failures in a row before a herald gives up. A herald that gives up expects its
# supervisor to restart it (Kubernetes does); a local system stops instead, so its heralds ride a
# Kingdom restart or outage of minutes out (the reconnect delays grow to 5 s).
HERALD_STREAM_MAX_FAILURES = 120


def cmms_command() -> list[str]:
    """`cmms`, preferring the script installed beside this interpreter."""
    beside = Path(sys.executable).with_name("cmms")
    if beside.is_file():
        return [str(beside)]
    return [sys.executable, "-c", "from cmms.deploy.cli import main; main()"]


def target(port: int) -> str:
    return f"{LOOPBACK}:{port}"


@dataclass(frozen=True)
class ServerPorts:
    grpc: int
    health: int
    http: int

    @classmethod
    def take(cls, pool: PortPool) -> ServerPorts:
        return cls(pool.take(), pool.take(), pool.take())

    def flags(self) -> list[str]:
        return [
            f"--host={LOOPBACK}",
            f"--port={self.grpc}",
            f"--health-port={self.health}",
            f"--http-port={self.http}",
        ]

    @property
    def probe(self) -> GrpcHealthProbe:
        return GrpcHealthProbe(LOOPBACK, self.health)


@dataclass(frozen=True)
class KingdomPorts:
    public: int
    system: int
    health: int
    metrics: int

    @classmethod
    def take(cls, pool: PortPool) -> KingdomPorts:
        return cls(pool.take(), pool.take(), pool.take(), pool.take())


@dataclass(frozen=True)
class DuchyPorts:
    internal_api: ServerPorts
    async_control: ServerPorts
    computation_control: ServerPorts
    fulfillment: ServerPorts
    scheduler_http: int

    @classmethod
    def take(cls, pool: PortPool) -> DuchyPorts:
        return cls(
            internal_api=ServerPorts.take(pool),
            async_control=ServerPorts.take(pool),
            computation_control=ServerPorts.take(pool),
            fulfillment=ServerPorts.take(pool),
            scheduler_http=pool.take(),
        )


KINGDOM_PORT_COUNT = 4
DUCHY_PORT_COUNT = 4 * 3 + 1


@dataclass(frozen=True)
class Topology:
    """Everything the command lines depend on."""

    layout: LocalLayout
    options: LocalOptions
    kingdom: KingdomPorts
    duchies: dict[str, DuchyPorts]
    data_providers: tuple[str, ...]
    database_urls: dict[str, str]
    blob_urls: dict[str, str]
    # The Kingdom's resource name of each duchy's consent-signaling certificate.
    duchy_certificates: dict[str, str]

    @property
    def kingdom_public(self) -> str:
        return target(self.kingdom.public)

    @property
    def kingdom_system(self) -> str:
        return target(self.kingdom.system)


def kingdom_spec(topology: Topology) -> ChildSpec:
    layout, ports = topology.layout, topology.kingdom
    argv = [
        *cmms_command(),
        "kingdom",
        "serve",
        f"--config={layout.kingdom_config}",
        f"--database-url={topology.database_urls['kingdom']}",
        f"--pki-dir={layout.pki_dir}",
        f"--host={LOOPBACK}",
        f"--public-port={ports.public}",
        f"--system-port={ports.system}",
        f"--health-port={ports.health}",
        f"--metrics-port={ports.metrics}",
    ]
    return ChildSpec("kingdom", argv, probe=GrpcHealthProbe(LOOPBACK, ports.health))


def _client_tls(topology: Topology, duchy_id: str) -> list[str]:
    pki = topology.layout.pki
    files = pki.party(Principal.duchy(duchy_id))
    return [
        f"--tls-cert-file={files.tls_cert}",
        f"--tls-key-file={files.tls_key}",
        f"--cert-collection-file={pki.all_root_certs}",
        f"--duchy-name={duchy_id}",
    ]


def _server_tls(topology: Topology, duchy_id: str) -> list[str]:
    return [
        *_client_tls(topology, duchy_id),
        f"--trust-config-file={topology.layout.pki.trust_config}",
        f"--shutdown-grace-seconds={SHUTDOWN_GRACE_SECONDS}",
    ]


def internal_api_spec(topology: Topology, duchy_id: str) -> ChildSpec:
    ports = topology.duchies[duchy_id].internal_api
    argv = [
        *cmms_command(),
        "duchy",
        "internal-api",
        *_server_tls(topology, duchy_id),
        *ports.flags(),
        f"--database-url={topology.database_urls[duchy_id]}",
        f"--blob-storage-url={topology.blob_urls[duchy_id]}",
        "--migrate",
    ]
    return ChildSpec(f"{duchy_id}-internal-api", argv, probe=ports.probe)


def duchy_server_specs(topology: Topology, duchy_id: str) -> list[ChildSpec]:
    """The duchy's servers other than the internal API (which they all call)."""
    duchy = topology.duchies[duchy_id]
    internal = f"--internal-api-target={target(duchy.internal_api.grpc)}"
    blobs = f"--blob-storage-url={topology.blob_urls[duchy_id]}"
    tls = _server_tls(topology, duchy_id)
    command = [*cmms_command(), "duchy"]
    return [
        ChildSpec(
            f"{duchy_id}-async-computation-control",
            [*command, "async-computation-control", *tls, *duchy.async_control.flags(), internal],
            probe=duchy.async_control.probe,
        ),
        ChildSpec(
            f"{duchy_id}-computation-control",
            [
                *command,
                "computation-control",
                *tls,
                *duchy.computation_control.flags(),
                internal,
                f"--async-computation-control-target={target(duchy.async_control.grpc)}",
                blobs,
            ],
            probe=duchy.computation_control.probe,
        ),
        ChildSpec(
            f"{duchy_id}-requisition-fulfillment",
            [
                *command,
                "requisition-fulfillment",
                *tls,
                *duchy.fulfillment.flags(),
                internal,
                f"--kingdom-system-api-target={topology.kingdom_system}",
                blobs,
            ],
            probe=duchy.fulfillment.probe,
        ),
    ]


def _kek_flags(topology: Topology, duchy_id: str) -> list[str]:
    return [
        f"--key-encryption-key-uri={local_kms_uri(topology.layout.duchy_kek(duchy_id))}",
        f"--private-key-store-url={topology.blob_urls[duchy_id]}",
    ]


def herald_spec(topology: Topology, duchy_id: str) -> ChildSpec:
    duchy = topology.duchies[duchy_id]
    argv = [
        *cmms_command(),
        "duchy",
        "herald",
        *_client_tls(topology, duchy_id),
        f"--kingdom-system-api-target={topology.kingdom_system}",
        f"--internal-api-target={target(duchy.internal_api.grpc)}",
        f"--protocols-setup-config={topology.layout.protocols_setup_config}",
        *_kek_flags(topology, duchy_id),
        "--initial-backoff-seconds=0.2",
        "--max-backoff-seconds=5",
        f"--stream-max-failures={HERALD_STREAM_MAX_FAILURES}",
        f"--herald-id={duchy_id}-herald",
    ]
    # The herald has no port: it counts as ready while it runs.
    return ChildSpec(f"{duchy_id}-herald", argv)


def mill_args(topology: Topology, duchy_id: str) -> list[str]:
    """The flags every mill job of the duchy gets (the scheduler adds the claim's own)."""
    duchy = topology.duchies[duchy_id]
    files = topology.layout.pki.party(Principal.duchy(duchy_id))
    peers = [
        f"--duchy-computation-control-target={other}={target(ports.computation_control.grpc)}"
        for other, ports in topology.duchies.items()
        if other != duchy_id
    ]
    return [
        *_client_tls(topology, duchy_id),
        f"--internal-api-target={target(duchy.internal_api.grpc)}",
        f"--kingdom-system-api-target={topology.kingdom_system}",
        f"--kingdom-public-api-target={topology.kingdom_public}",
        *peers,
        f"--blob-storage-url={topology.blob_urls[duchy_id]}",
        f"--trust-config-file={topology.layout.pki.trust_config}",
        "--consent-signaling-certificate-resource-name=" + topology.duchy_certificates[duchy_id],
        f"--consent-signaling-private-key-der-file={files.cs_key}",
        *_kek_flags(topology, duchy_id),
        f"--parallelism={topology.options.resolved_mill_parallelism}",
        f"--work-lock-duration={format_duration(topology.options.work_lock_duration)}",
    ]


def mill_type_flags(options: LocalOptions) -> list[str]:
    """Concurrency and lock duration of every mill type, as the scheduler takes them."""
    lock = format_duration(options.work_lock_duration)
    flags = []
    for mill_type in ("llv2", "hmss", "trustee"):
        flags += [
            f"--{mill_type}-maximum-concurrency={options.mill_maximum_concurrency}",
            f"--{mill_type}-work-lock-duration={lock}",
        ]
    return flags


def mill_scheduler_spec(topology: Topology, duchy_id: str) -> ChildSpec:
    duchy = topology.duchies[duchy_id]
    argv = [
        *cmms_command(),
        "duchy",
        "mill-scheduler",
        *_client_tls(topology, duchy_id),
        f"--internal-api-target={target(duchy.internal_api.grpc)}",
        "--launcher=subprocess",
        f"--polling-delay={topology.options.scheduler_polling_delay}",
        *mill_type_flags(topology.options),
        f"--successful-jobs-history-limit={MILL_JOB_HISTORY}",
        f"--failed-jobs-history-limit={MILL_JOB_HISTORY}",
        f"--mill-log-dir={topology.layout.mill_logs(duchy_id)}",
        f"--http-host={LOOPBACK}",
        f"--http-port={duchy.scheduler_http}",
        *(["--warm-standby"] if topology.options.mill_warm_standby else []),
        # The `=` form keeps each mill flag one value of --mill-args.
        *(f"--mill-args={arg}" for arg in mill_args(topology, duchy_id)),
    ]
    return ChildSpec(
        f"{duchy_id}-mill-scheduler", argv, probe=HttpHealthProbe(LOOPBACK, duchy.scheduler_http)
    )


def edp_spec(topology: Topology, edp_id: str) -> ChildSpec:
    options = topology.options
    argv = [
        *cmms_command(),
        "edp",
        "simulate",
        f"--edp-id={edp_id}",
        f"--kingdom-target={topology.kingdom_public}",
        *(
            f"--duchy-target={duchy_id}={target(ports.fulfillment.grpc)}"
            for duchy_id, ports in topology.duchies.items()
        ),
        f"--pki-dir={topology.layout.pki_dir}",
        *(f"--measurement-consumer=measurementConsumers/{mc}" for mc in MEASUREMENT_CONSUMERS),
        f"--population-seed={options.population_seed}",
        f"--population-size={options.population_size}",
        f"--reach-fraction={options.reach_fraction}",
        f"--overlap={options.overlap}",
        f"--poll-interval={options.edp_poll_interval_seconds}",
        "--hmss",
        "--trustee",
        f"--kms-kek-uri={local_kms_uri(topology.layout.trustee_kek)}",
    ]
    probe = EventGroupsProbe(
        topology.kingdom_public, topology.layout.pki, edp_id, MEASUREMENT_CONSUMERS
    )
    return ChildSpec(edp_id, argv, probe=probe)
