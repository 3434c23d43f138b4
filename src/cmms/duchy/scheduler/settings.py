"""Settings of `cmms duchy mill-scheduler`: every field is a flag and a `CMMS_<FIELD>` variable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import grpc
from pydantic import Field, model_validator

from cmms.common.durations import Duration
from cmms.common.grpc import ChannelSettings, secure_channel
from cmms.common.grpc.settings import GrpcClientSettings
from cmms.duchy.scheduler.launcher import HistoryLimits
from cmms.duchy.scheduler.mill_types import MillType
from cmms.duchy.scheduler.scheduler import MillTypeLimits


def _concurrency(kind: str) -> Any:
    return Field(
        default=1, ge=0, description=f"most {kind} mill jobs running at once (0 turns them off)"
    )


def _lock(kind: str) -> Any:
    return Field(
        default=timedelta(minutes=5),
        gt=timedelta(0),
        description=f"how long a {kind} job's claim lasts before others may retake it",
    )


def _template(kind: str) -> Any:
    return Field(default=None, description=f"PodTemplate of {kind} mill jobs (kubernetes)")


class MillSchedulerSettings(GrpcClientSettings):
    duchy_name: str
    internal_api_target: str = Field(description="host:port of the duchy's internal API")
    internal_api_cert_host: str | None = Field(
        default=None, description="TLS name of the internal API when the target's host differs"
    )
    internal_api_deadline_seconds: float = Field(default=30.0, gt=0)

    launcher: Literal["subprocess", "kubernetes"] = Field(
        default="subprocess", description="how mill jobs run"
    )
    polling_delay: Duration = Field(
        default=timedelta(seconds=2),
        gt=timedelta(0),
        description="longest pause between cycles; a cycle starts at once when the internal API "
        "reports new work (AwaitWork)",
    )
    successful_jobs_history_limit: int = Field(
        default=3, ge=0, description="finished jobs kept per mill type"
    )
    failed_jobs_history_limit: int = Field(
        default=1, ge=0, description="failed jobs kept per mill type"
    )
    llv2_maximum_concurrency: int = _concurrency("LLv2 and reach-only LLv2")
    llv2_work_lock_duration: Duration = _lock("LLv2")
    hmss_maximum_concurrency: int = _concurrency("HMSS")
    hmss_work_lock_duration: Duration = _lock("HMSS")
    trustee_maximum_concurrency: int = _concurrency("TrusTee")
    trustee_work_lock_duration: Duration = _lock("TrusTee")

    namespace: str | None = Field(
        default=None, description="namespace of the jobs (default: the pod's own)"
    )
    deployment_name: str | None = Field(
        default=None, description="the scheduler's own Deployment, owner of its jobs (kubernetes)"
    )
    llv2_pod_template_name: str | None = _template("LLv2")
    hmss_pod_template_name: str | None = _template("HMSS")
    trustee_pod_template_name: str | None = _template("TrusTee")
    kubeconfig: Path | None = Field(
        default=None, description="kubeconfig file outside a cluster (default: in-cluster)"
    )

    mill_command: list[str] | None = Field(
        default=None,
        description="mill command, one word per flag (subprocess; default: cmms duchy mill)",
    )
    mill_args: list[str] = Field(
        default_factory=list, description="arguments appended to every mill job (subprocess)"
    )
    mill_env: dict[str, str] = Field(
        default_factory=dict, description="variables added to every mill job (subprocess)"
    )
    mill_log_dir: Path | None = Field(
        default=None, description="directory of one log file per mill job (subprocess)"
    )
    warm_standby: bool = Field(
        default=False,
        description="keep one interpreter with the mill loaded that forks every job, so jobs "
        "skip start-up (subprocess; runs this installation's cmms duchy mill, not mill-command)",
    )

    http_host: str = Field(default="127.0.0.1", description="address of /healthz and /metrics")
    http_port: int = Field(
        default=9090, description="port of /healthz and /metrics (negative: off)"
    )

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
