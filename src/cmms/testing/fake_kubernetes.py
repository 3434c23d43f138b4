"""A fake Kubernetes API server on loopback, for testing code that uses the real `kubernetes` client.

No Kubernetes can run here, so this serves the few REST paths the mill job scheduler uses, with
the real JSON shapes: read a Deployment, read a PodTemplate, and create / list (equality label
selectors) / read / delete Jobs. Objects live in memory; every request is recorded so tests can
assert on what a client sent. Tests play the Job controller with `set_job_status`.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

Json = dict[str, Any]

_DEPLOYMENT = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)$")
_POD_TEMPLATE = re.compile(r"^/api/v1/namespaces/([^/]+)/podtemplates/([^/]+)$")
_JOBS = re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs$")
_JOB = re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs/([^/]+)$")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Json | None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, reason: str, message: str) -> Json:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 400 else "Success",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _matches(labels: dict[str, str], selector: str) -> bool:
    """Equality-based selectors only (`a=b,c==d,e!=f`): all the scheduler needs."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
            continue
        key, value = re.split(r"==?", term, maxsplit=1)
        if labels.get(key.strip()) != value.strip():
            return False
    return True


class FakeKubernetesApi:
    """Start with `running()` (a context manager); `url` is then `http://127.0.0.1:<port>`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deployments: dict[tuple[str, str], Json] = {}
        self._pod_templates: dict[tuple[str, str], Json] = {}
        self._jobs: dict[tuple[str, str], Json] = {}
        self._requests: list[RecordedRequest] = []
        self._resource_version = 0
        self._server: ThreadingHTTPServer | None = None

    # ---- objects, as a test arranges and inspects them ----

    def add_deployment(self, namespace: str, name: str) -> Json:
        deployment = self._stored(
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}},
            namespace,
        )
        deployment["spec"] = {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "scheduler"}]},
            },
        }
        with self._lock:
            self._deployments[(namespace, name)] = deployment
        return copy.deepcopy(deployment)

    def add_pod_template(self, namespace: str, pod_template: Json) -> Json:
        stored = self._stored(copy.deepcopy(pod_template), namespace)
        with self._lock:
            self._pod_templates[(namespace, stored["metadata"]["name"])] = stored
        return copy.deepcopy(stored)

    def add_job(self, namespace: str, job: Json) -> Json:
        """A job created by someone else (another scheduler, an operator)."""
        stored = self._stored(copy.deepcopy(job), namespace)
        stored.setdefault("status", {})
        with self._lock:
            self._jobs[(namespace, stored["metadata"]["name"])] = stored
        return copy.deepcopy(stored)

    def jobs(self, namespace: str) -> dict[str, Json]:
        with self._lock:
            return {n: copy.deepcopy(j) for (ns, n), j in self._jobs.items() if ns == namespace}

    def set_job_status(
        self,
        namespace: str,
        name: str,
        *,
        active: int = 0,
        condition: str | None = None,
        finished_at: str | None = None,
    ) -> None:
        """What the Job controller would write: `condition` is `Complete`, `Failed` or `None`."""
        with self._lock:
            job = self._jobs[(namespace, name)]
            status: Json = {"active": active} if active else {}
            if condition is not None:
                moment = finished_at or _now()
                status["conditions"] = [
                    {"type": condition, "status": "True", "lastTransitionTime": moment}
                ]
                if condition == "Complete":
                    status["completionTime"] = moment
            job["status"] = status

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_of(self, method: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method]

    def kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """Write a kubeconfig pointing at this server (plain HTTP, no credentials)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {}}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
                }
            ],
            "current-context": "fake",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    # ---- the server ----

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake Kubernetes API is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @contextmanager
    def running(self) -> Iterator[FakeKubernetesApi]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api._handle(self, "GET")

            def do_POST(self) -> None:
                api._handle(self, "POST")

            def do_DELETE(self) -> None:
                api._handle(self, "DELETE")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # Requests are recorded instead.

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join()
            self._server = None

    def _stored(self, obj: Json, namespace: str) -> Json:
        with self._lock:
            self._resource_version += 1
            version = self._resource_version
        metadata = obj.setdefault("metadata", {})
        metadata.setdefault("namespace", namespace)
        metadata.setdefault("uid", str(uuid.uuid4()))
        metadata.setdefault("creationTimestamp", _now())
        metadata["resourceVersion"] = str(version)
        return obj

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        query = parse_qs(parts.query)
        with self._lock:
            self._requests.append(RecordedRequest(method, parts.path, query, body))
        code, reply = self._route(method, parts.path, query, body)
        payload = json.dumps(reply).encode()
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Json | None
    ) -> tuple[int, Json]:
        if method == "GET" and (found := _DEPLOYMENT.match(path)):
            return self._get(self._deployments, found.groups(), "deployments.apps")
        if method == "GET" and (found := _POD_TEMPLATE.match(path)):
            return self._get(self._pod_templates, found.groups(), "podtemplates")
        if found := _JOBS.match(path):
            namespace = found.group(1)
            if method == "GET":
                return 200, self._list_jobs(namespace, query.get("labelSelector", [""])[0])
            if method == "POST" and body is not None:
                return self._create_job(namespace, body)
        if found := _JOB.match(path):
            if method == "GET":
                return self._get(self._jobs, found.groups(), "jobs.batch")
            if method == "DELETE":
                return self._delete_job(found.group(1), found.group(2))
        return 404, _status(404, "NotFound", f"the server could not find {method} {path}")

    def _get(
        self, store: dict[tuple[str, str], Json], key: tuple[str, ...], kind: str
    ) -> tuple[int, Json]:
        with self._lock:
            found = store.get((key[0], key[1]))
            if found is None:
                return 404, _status(404, "NotFound", f'{kind} "{key[1]}" not found')
            return 200, copy.deepcopy(found)

    def _list_jobs(self, namespace: str, selector: str) -> Json:
        with self._lock:
            items = [
                copy.deepcopy(job)
                for (ns, _), job in sorted(self._jobs.items())
                if ns == namespace and _matches(job["metadata"].get("labels", {}), selector)
            ]
            version = str(self._resource_version)
        return {
            "apiVersion": "batch/v1",
            "kind": "JobList",
            "metadata": {"resourceVersion": version},
            "items": items,
        }

    def _create_job(self, namespace: str, body: Json) -> tuple[int, Json]:
        name = body.get("metadata", {}).get("name")
        if not name:
            return 422, _status(422, "Invalid", "Job.metadata.name: Required value")
        with self._lock:
            exists = (namespace, name) in self._jobs
        if exists:
            return 409, _status(409, "AlreadyExists", f'jobs.batch "{name}" already exists')
        stored = self._stored(copy.deepcopy(body), namespace)
        stored["status"] = {}
        with self._lock:
            self._jobs[(namespace, name)] = stored
        return 201, copy.deepcopy(stored)

    def _delete_job(self, namespace: str, name: str) -> tuple[int, Json]:
        with self._lock:
            removed = self._jobs.pop((namespace, name), None)
        if removed is None:
            return 404, _status(404, "NotFound", f'jobs.batch "{name}" not found')
        return 200, _status(200, "", "") | {"details": {"name": name, "kind": "jobs"}}
