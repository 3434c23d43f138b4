"""Settings of `cmms duchy mill-scheduler`: every field is a flag and a `CMMS_<FIELD>` variable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

import grpc
from pydantic import Field, model_validator

from cmms.common.durations import Duration
from cmms.common.grpc import ChannelSettings, secure_channel
from cmms.common.grpc.settings import GrpcClientSettings
from cmms.duchy.scheduler.launcher import HistoryLimits
from cmms.duchy.scheduler.mill_types import MillType
from cmms.duchy.scheduler.scheduler import MillTypeLimits

Count = Field(default=1, ge=0)
LockDuration = Field(default=timedelta(minutes=5), gt=timedelta(0))


class MillSchedulerSettings(GrpcClientSettings):
    duchy_name: str
    internal_api_target: str
    # TLS host name of the internal API server when it differs from the target's host.
    internal_api_cert_host: str | None = None
    internal_api_deadline_seconds: float = Field(default=30.0, gt=0)

    launcher: Literal["subprocess", "kubernetes"] = "subprocess"
    polling_delay: Duration = Field(default=timedelta(seconds=2), gt=timedelta(0))
    successful_jobs_history_limit: int = Field(default=3, ge=0)
    failed_jobs_history_limit: int = Field(default=1, ge=0)
    # A maximum concurrency of 0 turns that mill type off.
    llv2_maximum_concurrency: int = Count
    llv2_work_lock_duration: Duration = LockDuration
    hmss_maximum_concurrency: int = Count
    hmss_work_lock_duration: Duration = LockDuration
    trustee_maximum_concurrency: int = Count
    trustee_work_lock_duration: Duration = LockDuration

    # Kubernetes launcher: the scheduler's own Deployment and the mill PodTemplates (same namespace).
    namespace: str | None = None
    deployment_name: str | None = None
    llv2_pod_template_name: str | None = None
    hmss_pod_template_name: str | None = None
    trustee_pod_template_name: str | None = None
    # Outside a cluster: a kubeconfig file (inside, the pod's service account is used).
    kubeconfig: Path | None = None

    # Subprocess launcher: the mill command (default `cmms duchy mill`), extra args and variables.
    mill_command: list[str] | None = None
    mill_args: list[str] = Field(default_factory=list)
    mill_env: dict[str, str] = Field(default_factory=dict)
    mill_log_dir: Path | None = None

    # `/healthz` and Prometheus `/metrics` (a negative port turns them off).
    http_host: str = "127.0.0.1"
    http_port: int = 9090

    @model_validator(mode="after")
    def _kubernetes_names_given(self) -> MillSchedulerSettings:
        if self.launcher == "kubernetes":
            missing = [
                f"{t.value}_pod_template_name"
                for t in self.enabled_mill_types()
                if not self.pod_template_names().get(t)
            ]
            if self.deployment_name is None:
                missing.insert(0, "deployment_name")
            if missing:
                raise ValueError(f"the kubernetes launcher needs {', '.join(missing)}")
        return self

    def mill_type_limits(self) -> list[MillTypeLimits]:
        return [
            MillTypeLimits(
                MillType.LLV2, self.llv2_maximum_concurrency, self.llv2_work_lock_duration
            ),
            MillTypeLimits(
                MillType.HMSS, self.hmss_maximum_concurrency, self.hmss_work_lock_duration
            ),
            MillTypeLimits(
                MillType.TRUSTEE, self.trustee_maximum_concurrency, self.trustee_work_lock_duration
            ),
        ]

    def enabled_mill_types(self) -> list[MillType]:
        return [
            limits.mill_type for limits in self.mill_type_limits() if limits.maximum_concurrency
        ]

    def pod_template_names(self) -> dict[MillType, str]:
        """PodTemplate names of the enabled mill types that have one."""
        names = {
            MillType.LLV2: self.llv2_pod_template_name,
            MillType.HMSS: self.hmss_pod_template_name,
            MillType.TRUSTEE: self.trustee_pod_template_name,
        }
        return {t: n for t, n in names.items() if n and t in self.enabled_mill_types()}

    def history_limits(self) -> HistoryLimits:
        return HistoryLimits(self.successful_jobs_history_limit, self.failed_jobs_history_limit)

    def internal_api_channel(self) -> grpc.aio.Channel:
        return secure_channel(
            self.internal_api_target,
            self.client_tls(),
            ChannelSettings(target_name_override=self.internal_api_cert_host),
        )
