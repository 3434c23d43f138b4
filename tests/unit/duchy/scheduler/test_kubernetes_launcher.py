"""`KubernetesJobLauncher` with the real `kubernetes` client against a fake API server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from kubernetes import client

from cmms.duchy.scheduler import HistoryLimits, MillClaim, MillType
from cmms.duchy.scheduler.kubernetes_launcher import KubernetesJobLauncher, KubernetesSetupError
from cmms.protocols.stages import ProtocolType
from cmms.testing.fake_kubernetes import FakeKubernetesApi

from .fakes import pod_template

NS = "duchy-worker1"
DEPLOYMENT = "worker1-mill-job-scheduler"
TEMPLATES = {MillType.LLV2: "worker1-llv2-mill", MillType.HMSS: "worker1-hmss-mill"}


@pytest.fixture
def fake() -> Iterator[FakeKubernetesApi]:
    api = FakeKubernetesApi()
    with api.running():
        api.add_deployment(NS, DEPLOYMENT)
        for name in TEMPLATES.values():
            api.add_pod_template(NS, pod_template(name))
        yield api


def api_client(fake: FakeKubernetesApi) -> client.ApiClient:
    return client.ApiClient(client.Configuration(host=fake.url))


@pytest.fixture
async def launcher(fake: FakeKubernetesApi) -> AsyncIterator[KubernetesJobLauncher]:
    connected = await KubernetesJobLauncher.connect(
        api_client(fake), NS, DEPLOYMENT, TEMPLATES, HistoryLimits(successful=2, failed=1)
    )
    yield connected
    await connected.close()


def llv2_claim(job: str, global_id: str = "gid-1", version: int = 9) -> MillClaim:
    return MillClaim(job, ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2, global_id, version)


async def test_startup_reads_the_deployment_and_the_pod_templates(
    fake: FakeKubernetesApi, launcher: KubernetesJobLauncher
) -> None:
    paths = [r.path for r in fake.requests_of("GET")]
    assert paths == [
        f"/apis/apps/v1/namespaces/{NS}/deployments/{DEPLOYMENT}",
        f"/api/v1/namespaces/{NS}/podtemplates/worker1-llv2-mill",
        f"/api/v1/namespaces/{NS}/podtemplates/worker1-hmss-mill",
    ]


async def test_a_missing_pod_template_is_fatal(fake: FakeKubernetesApi) -> None:
    with pytest.raises(KubernetesSetupError, match="worker1-trustee-mill"):
        await KubernetesJobLauncher.connect(
            api_client(fake), NS, DEPLOYMENT, {MillType.TRUSTEE: "worker1-trustee-mill"}
        )


async def test_a_missing_deployment_is_fatal(fake: FakeKubernetesApi) -> None:
    with pytest.raises(KubernetesSetupError, match="no-such-scheduler"):
        await KubernetesJobLauncher.connect(api_client(fake), NS, "no-such-scheduler", TEMPLATES)


async def test_the_created_job_carries_the_claim_label_and_owner(
    fake: FakeKubernetesApi, launcher: KubernetesJobLauncher
) -> None:
    await launcher.launch(MillType.LLV2, llv2_claim("worker1-llv2-mill-job-bcdfg"))

    (post,) = fake.requests_of("POST")
    assert post.path == f"/apis/batch/v1/namespaces/{NS}/jobs"
    body = post.body
    assert body is not None
    assert body["apiVersion"] == "batch/v1" and body["kind"] == "Job"
    assert body["metadata"]["name"] == "worker1-llv2-mill-job-bcdfg"
    assert body["metadata"]["labels"] == {"mill-type": "LIQUID_LEGIONS_V2"}
    deployment_uid = fake_deployment_uid(fake)
    assert body["metadata"]["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": DEPLOYMENT, "uid": deployment_uid}
    ]
    pod = body["spec"]["template"]
    assert pod["metadata"]["labels"] == {
        "app": "worker1-llv2-mill",
        "mill-type": "LIQUID_LEGIONS_V2",
    }
    mill, sidecar = pod["spec"]["containers"]
    assert mill["command"] == ["cmms", "duchy", "mill"]
    assert mill["args"] == [
        "--duchy-name=worker1",
        "--mill-id=worker1-llv2-mill-job-bcdfg",
        "--claimed-computation-type=REACH_ONLY_LIQUID_LEGIONS_V2",
        "--claimed-computation-id=gid-1",
        "--claimed-computation-version=9",
    ]
    # Only the first container is the mill.
    assert sidecar["args"] == ["--quiet"]
    assert pod["spec"]["restartPolicy"] == "Never"
    # The template itself is untouched: the next job starts from it again.
    await launcher.launch(MillType.LLV2, llv2_claim("worker1-llv2-mill-job-hjklm", "gid-2"))
    second = fake.requests_of("POST")[1].body
    assert second is not None
    assert second["spec"]["template"]["spec"]["containers"][0]["args"][1:2] == [
        "--mill-id=worker1-llv2-mill-job-hjklm"
    ]
    assert len(second["spec"]["template"]["spec"]["containers"][0]["args"]) == 5


def fake_deployment_uid(fake: FakeKubernetesApi) -> str:
    # The uid the fake assigned, as any client reading the Deployment sees it.
    reader = api_client(fake)
    try:
        deployment = client.AppsV1Api(reader).read_namespaced_deployment(DEPLOYMENT, NS)
        assert deployment.metadata is not None and deployment.metadata.uid is not None
        return deployment.metadata.uid
    finally:
        reader.close()


async def test_active_jobs_count_jobs_without_a_terminal_condition(
    fake: FakeKubernetesApi, launcher: KubernetesJobLauncher
) -> None:
    for job in ("created", "running", "retrying", "complete", "failed"):
        await launcher.launch(MillType.LLV2, llv2_claim(job))
    await launcher.launch(MillType.HMSS, llv2_claim("an-hmss-job"))
    # The job controller has not looked at "created" yet; "retrying" has a failed pod and waits.
    fake.set_job_status(NS, "running", active=1)
    fake.set_job_status(NS, "complete", condition="Complete")
    fake.set_job_status(NS, "failed", condition="Failed")

    assert sorted(await launcher.active_jobs(MillType.LLV2)) == ["created", "retrying", "running"]
    lists = fake.requests_of("GET")[-1]
    assert lists.path == f"/apis/batch/v1/namespaces/{NS}/jobs"
    assert lists.query["labelSelector"] == ["mill-type=LIQUID_LEGIONS_V2"]
    assert await launcher.active_jobs(MillType.HMSS) == ["an-hmss-job"]


async def test_jobs_of_another_owner_are_neither_counted_nor_deleted(
    fake: FakeKubernetesApi, launcher: KubernetesJobLauncher
) -> None:
    other_owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x", "uid": "not-ours"}
    for name, condition in (("foreign-running", None), ("foreign-done", "Complete")):
        fake.add_job(
            NS,
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {
                    "name": name,
                    "labels": {"mill-type": "LIQUID_LEGIONS_V2"},
                    "ownerReferences": [other_owner],
                },
                "spec": {"template": pod_template("x")["template"]},
            },
        )
        if condition:
            fake.set_job_status(NS, name, condition=condition)
    limited = await KubernetesJobLauncher.connect(
        api_client(fake), NS, DEPLOYMENT, TEMPLATES, HistoryLimits(successful=0, failed=0)
    )
    try:
        assert await limited.active_jobs(MillType.LLV2) == []
        assert await limited.clean_up(MillType.LLV2) == []
    finally:
        await limited.close()
    assert fake.requests_of("DELETE") == []
    assert set(fake.jobs(NS)) == {"foreign-running", "foreign-done"}


async def test_cleanup_keeps_the_newest_finished_jobs_within_the_limits(
    fake: FakeKubernetesApi, launcher: KubernetesJobLauncher
) -> None:
    finished = {
        "ok-oldest": ("Complete", "2026-01-01T00:00:00Z"),
        "ok-old": ("Complete", "2026-01-02T00:00:00Z"),
        "ok-new": ("Complete", "2026-01-03T00:00:00Z"),
        "ok-newest": ("Complete", "2026-01-04T00:00:00Z"),
        "failed-old": ("Failed", "2026-01-01T12:00:00Z"),
        "failed-new": ("Failed", "2026-01-02T12:00:00Z"),
    }
    for job in [*finished, "still-running"]:
        await launcher.launch(MillType.LLV2, llv2_claim(job))
    for job, (condition, moment) in finished.items():
        fake.set_job_status(NS, job, condition=condition, finished_at=moment)

    deleted = await launcher.clean_up(MillType.LLV2)

    # Limits: 2 successful, 1 failed. Deleted oldest first.
    assert deleted == ["ok-oldest", "failed-old", "ok-old"]
    deletes = fake.requests_of("DELETE")
    assert [r.path for r in deletes] == [
        f"/apis/batch/v1/namespaces/{NS}/jobs/{j}" for j in deleted
    ]
    # Pods go with their job (the API server's default for Jobs would orphan them).
    assert all(r.query["propagationPolicy"] == ["Background"] for r in deletes)
    assert set(fake.jobs(NS)) == {"ok-new", "ok-newest", "failed-new", "still-running"}
    assert await launcher.clean_up(MillType.LLV2) == []


async def test_a_job_deleted_by_someone_else_meanwhile_is_not_an_error(
    fake: FakeKubernetesApi,
) -> None:
    class RacingLauncher(KubernetesJobLauncher):
        async def _owned_jobs(self, mill_type: MillType) -> list[client.V1Job]:
            jobs = await super()._owned_jobs(mill_type)
            for job in jobs:  # Another cleaner wins the race after our list.
                assert job.metadata is not None and job.metadata.name is not None
                await_delete(fake, job.metadata.name)
            return jobs

    racing = await RacingLauncher.connect(
        api_client(fake), NS, DEPLOYMENT, TEMPLATES, HistoryLimits(successful=0, failed=0)
    )
    try:
        await racing.launch(MillType.HMSS, llv2_claim("gone"))
        fake.set_job_status(NS, "gone", condition="Complete")
        assert await racing.clean_up(MillType.HMSS) == ["gone"]
    finally:
        await racing.close()


def await_delete(fake: FakeKubernetesApi, name: str) -> None:
    other = api_client(fake)
    try:
        client.BatchV1Api(other).delete_namespaced_job(name, NS)
    finally:
        other.close()
