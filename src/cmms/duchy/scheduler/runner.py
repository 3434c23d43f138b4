"""Wiring of `cmms duchy mill-scheduler`: settings in, a running scheduler until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from pathlib import Path

from cmms.common.grpc.http import HealthAndMetricsServer
from cmms.common.logging import get_logger
from cmms.duchy.scheduler.claims import GrpcWorkClaimer, GrpcWorkWatcher
from cmms.duchy.scheduler.launcher import JobLauncher
from cmms.duchy.scheduler.scheduler import MillScheduler
from cmms.duchy.scheduler.settings import MillSchedulerSettings
from cmms.duchy.scheduler.subprocess_launcher import (
    SubprocessLauncher,
    SubprocessSettings,
    default_mill_command,
    default_standby_command,
)

# Where Kubernetes mounts the namespace of a pod's service account.
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
_log = get_logger(__name__)


async def build_launcher(settings: MillSchedulerSettings) -> JobLauncher:
    if settings.launcher == "kubernetes":
        return await _kubernetes_launcher(settings)
    return SubprocessLauncher(
        SubprocessSettings(
            command=settings.mill_command or default_mill_command(),
            extra_args=settings.mill_args,
            env=settings.mill_env,
            log_dir=settings.mill_log_dir,
            standby_command=default_standby_command() if settings.warm_standby else None,
        ),
        settings.history_limits(),
    )


async def _kubernetes_launcher(settings: MillSchedulerSettings) -> JobLauncher:
    # Imported here: the `k8s` extra is only needed by this launcher.
    from kubernetes import client, config

    from cmms.duchy.scheduler.kubernetes_launcher import KubernetesJobLauncher

    configuration = client.Configuration()
    if settings.kubeconfig is not None:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            str(settings.kubeconfig), client_configuration=configuration
        )
    else:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    assert settings.deployment_name is not None  # checked by the settings
    return await KubernetesJobLauncher.connect(
        client.ApiClient(configuration),
        settings.namespace or _pod_namespace(),
        settings.deployment_name,
        settings.pod_template_names(),
        settings.history_limits(),
    )


def _pod_namespace() -> str:
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


async def run_mill_scheduler(
    settings: MillSchedulerSettings,
    stop: asyncio.Event | None = None,
    started: Callable[[int | None], None] | None = None,
    launcher: JobLauncher | None = None,
) -> None:
    """Schedule mill jobs until `stop` is set or the process gets SIGTERM/SIGINT.

    `started` receives the bound `/healthz` + `/metrics` port (`None` when turned off). The
    launcher is built from the settings unless one is given; it is closed at the end either way.
    """
    stop = stop or asyncio.Event()
    launcher = launcher or await build_launcher(settings)
    channel = settings.internal_api_channel()
    scheduler = MillScheduler(
        settings.duchy_name,
        GrpcWorkClaimer(channel, settings.internal_api_deadline_seconds),
        launcher,
        settings.mill_type_limits(),
        settings.polling_delay,
        watcher=GrpcWorkWatcher(channel, settings.internal_api_deadline_seconds),
    )
    http = (
        HealthAndMetricsServer(
            settings.http_host, settings.http_port, is_healthy=lambda: not stop.is_set()
        )
        if settings.http_port >= 0
        else None
    )
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    try:
        port = await http.start() if http is not None else None
        if started is not None:
            started(port)
        await scheduler.run(stop)
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        if http is not None:
            await http.stop()
        await launcher.close()
        await channel.close()
        _log.info("mill scheduler shut down", duchy=settings.duchy_name)
