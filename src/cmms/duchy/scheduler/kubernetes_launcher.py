"""Mill jobs as Kubernetes Jobs cloned from PodTemplates (the official `kubernetes` client).

At startup the launcher reads the scheduler's own Deployment and one PodTemplate per mill type; a
missing one is fatal. Each job is a `batch/v1` Job whose pod is the template with the claim
appended to the first container's args, labelled `mill-type=<TYPE>` and owned by the Deployment
(so deleting the scheduler deletes its jobs, and two schedulers in one namespace never count or
delete each other's jobs).

The client is synchronous; its calls run in worker threads so the scheduler's loop stays free.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from kubernetes import client

from cmms.common.logging import get_logger
from cmms.duchy.scheduler.claims import MillClaim
from cmms.duchy.scheduler.launcher import HistoryLimits
from cmms.duchy.scheduler.mill_types import MillType

MILL_TYPE_LABEL = "mill-type"
_EPOCH = datetime.fromtimestamp(0, UTC)
_log = get_logger(__name__)
T = TypeVar("T")


class KubernetesSetupError(RuntimeError):
    """The Deployment or a PodTemplate the launcher needs cannot be read."""


@dataclass(frozen=True)
class OwnerDeployment:
    """The scheduler's Deployment, owner of every job it creates."""

    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "name": self.name, "uid": self.uid}


class KubernetesJobLauncher:
    """`JobLauncher` creating Kubernetes Jobs; build it with `connect`."""

    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        owner: OwnerDeployment,
        pod_templates: Mapping[MillType, dict[str, Any]],
        limits: HistoryLimits,
    ) -> None:
        self._api = api_client
        self._batch = client.BatchV1Api(api_client)
        self._namespace = namespace
        self._owner = owner
        self._templates = dict(pod_templates)
        self._limits = limits

    @classmethod
    async def connect(
        cls,
        api_client: client.ApiClient,
        namespace: str,
        deployment_name: str,
        pod_template_names: Mapping[MillType, str],
        limits: HistoryLimits | None = None,
    ) -> KubernetesJobLauncher:
        """Read the Deployment and the PodTemplates; raises `KubernetesSetupError` if one is missing."""
        apps = client.AppsV1Api(api_client)
        core = client.CoreV1Api(api_client)
        try:
            deployment = await _off_loop(
                apps.read_namespaced_deployment, deployment_name, namespace
            )
        except client.ApiException as error:
            raise KubernetesSetupError(
                f"cannot read Deployment {namespace}/{deployment_name}: {error.status} {error.reason}"
            ) from error
        templates: dict[MillType, dict[str, Any]] = {}
        for mill_type, name in pod_template_names.items():
            try:
                found = await _off_loop(core.read_namespaced_pod_template, name, namespace)
            except client.ApiException as error:
                raise KubernetesSetupError(
                    f"cannot read PodTemplate {namespace}/{name} ({mill_type.value} mills): "
                    f"{error.status} {error.reason}"
                ) from error
            templates[mill_type] = _pod_template_spec(api_client, found, name)
        metadata = deployment.metadata
        if metadata is None or not metadata.name or not metadata.uid:
            raise KubernetesSetupError(f"Deployment {deployment_name} has no name or uid")
        owner = OwnerDeployment(metadata.name, metadata.uid)
        return cls(api_client, namespace, owner, templates, limits or HistoryLimits())

    def job_body(self, mill_type: MillType, claim: MillClaim) -> client.V1Job:
        """The Job that runs `claim`: the mill type's pod template with the claim in its args."""
        template = self._templates.get(mill_type)
        if template is None:
            raise ValueError(f"no pod template for {mill_type.value} mills")
        pod = copy.deepcopy(template)
        container = pod["spec"]["containers"][0]
        container["args"] = [*container.get("args", []), *claim.mill_args()]
        pod.setdefault("metadata", {}).setdefault("labels", {})[MILL_TYPE_LABEL] = mill_type.label
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": claim.mill_id,
                "namespace": self._namespace,
                "labels": {MILL_TYPE_LABEL: mill_type.label},
                "ownerReferences": [self._owner.reference()],
            },
            "spec": {"template": pod},
        }
        body = client.V1Job.from_dict(job)
        assert body is not None  # from_dict returns None only for None
        return body

    async def launch(self, mill_type: MillType, claim: MillClaim) -> None:
        body = self.job_body(mill_type, claim)
        await _off_loop(self._batch.create_namespaced_job, self._namespace, body)
        _log.info(
            "mill job created",
            job=claim.mill_id,
            mill_type=mill_type.value,
            computation=claim.global_computation_id,
        )

    async def active_jobs(self, mill_type: MillType) -> list[str]:
        return [_name(job) for job in await self._owned_jobs(mill_type) if _is_active(job)]

    async def clean_up(self, mill_type: MillType) -> list[str]:
        jobs = await self._owned_jobs(mill_type)
        succeeded = _newest_first([j for j in jobs if _succeeded(j)])
        failed = _newest_first([j for j in jobs if _has_condition(j, "Failed")])
        doomed = succeeded[self._limits.successful :] + failed[self._limits.failed :]
        # Oldest first, so an interrupted cleanup leaves the newest history behind.
        doomed.sort(key=_finish_time)
        deleted: list[str] = []
        for job in doomed:
            try:
                await _off_loop(
                    self._batch.delete_namespaced_job,
                    _name(job),
                    self._namespace,
                    # Without it the API server orphans the job's pods.
                    propagation_policy="Background",
                )
            except client.ApiException as error:
                if error.status != 404:  # Already gone: someone else cleaned it up.
                    raise
            deleted.append(_name(job))
        if deleted:
            _log.info("finished mill jobs deleted", mill_type=mill_type.value, jobs=deleted)
        return deleted

    async def close(self) -> None:
        await _off_loop(self._api.close)

    async def _owned_jobs(self, mill_type: MillType) -> list[client.V1Job]:
        listing = await _off_loop(
            self._batch.list_namespaced_job,
            self._namespace,
            label_selector=f"{MILL_TYPE_LABEL}={mill_type.label}",
        )
        return [job for job in listing.items or [] if self._owns(job)]

    def _owns(self, job: client.V1Job) -> bool:
        references = job.metadata.owner_references if job.metadata else None
        return any(ref.uid == self._owner.uid for ref in references or [])


async def _off_loop(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(call, *args, **kwargs)


def _pod_template_spec(
    api_client: client.ApiClient, pod_template: client.V1PodTemplate, name: str
) -> dict[str, Any]:
    spec: dict[str, Any] = api_client.sanitize_for_serialization(  # type: ignore[no-untyped-call]
        pod_template.template
    )
    if not spec or not spec.get("spec", {}).get("containers"):
        raise KubernetesSetupError(f"PodTemplate {name} has no containers")
    return spec


def _name(job: client.V1Job) -> str:
    return job.metadata.name if job.metadata and job.metadata.name else ""


def _has_condition(job: client.V1Job, kind: str) -> bool:
    conditions = job.status.conditions if job.status else None
    return any(c.type == kind and c.status == "True" for c in conditions or [])


def _succeeded(job: client.V1Job) -> bool:
    return _has_condition(job, "Complete") and not _has_condition(job, "Failed")


def _is_active(job: client.V1Job) -> bool:
    # `status.active` lags behind creation and is 0 while a failed pod waits to be retried, so a
    # job also counts until it has a terminal condition: the concurrency limit is then exact.
    if job.status is not None and (job.status.active or 0) > 0:
        return True
    return not (_has_condition(job, "Complete") or _has_condition(job, "Failed"))


def _finish_time(job: client.V1Job) -> datetime:
    status = job.status
    if status is not None and status.completion_time is not None:
        return _aware(status.completion_time)
    for condition in (status.conditions if status else None) or []:
        if condition.type == "Failed" and condition.last_transition_time is not None:
            return _aware(condition.last_transition_time)
    created = job.metadata.creation_timestamp if job.metadata else None
    return _aware(created) if created is not None else _EPOCH


def _newest_first(jobs: Sequence[client.V1Job]) -> list[client.V1Job]:
    return sorted(jobs, key=_finish_time, reverse=True)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
