"""The Kubernetes manifests: schema-valid (strict) and consistent with each other and the CLI.

No cluster can run here, so `kubernetes-validate` checks every object against the API schemas of
a recent Kubernetes, and these tests check what a schema cannot: that Services and
NetworkPolicies select pods that exist, that the scheduler's flags name the PodTemplates and its
own Deployment, that RBAC grants what the Kubernetes launcher calls, and that every command and
flag in a container is one the `cmms` CLI really has.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer.main

from cmms.common.settings import env_name
from cmms.deploy.cli import app
from cmms.deploy.k8s import Group, documents, manifest_files

Obj = dict[str, Any]
GROUPS: tuple[Group, ...] = ("kingdom", "duchy")
OPERATIONS = Path(__file__).parents[3] / "docs" / "OPERATIONS.md"
WORKLOADS = ("Deployment", "PodTemplate", "CronJob")
# ARCHITECTURE.md §5: the commands the manifests may name even before they exist.
CONTRACT_COMMANDS = {
    ("kingdom", "serve"),
    ("kingdom", "db", "migrate"),
    *(
        ("duchy", name)
        for name in (
            "internal-api",
            "computation-control",
            "async-computation-control",
            "requisition-fulfillment",
            "herald",
            "mill-scheduler",
            "mill",
            "cleaner",
        )
    ),
    ("duchy", "db", "migrate"),
}


def all_objects() -> Iterator[tuple[Group, Obj]]:
    for group in GROUPS:
        for obj in documents(group):
            yield group, obj


def object_id(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def of_kind(group: Group, kind: str) -> list[Obj]:
    return [o for o in documents(group) if o["kind"] == kind]


def named(group: Group, kind: str, name: str) -> Obj:
    (found,) = [o for o in of_kind(group, kind) if o["metadata"]["name"] == name]
    return found


def pod_template(obj: Obj) -> Obj:
    """The pod template of a Deployment, PodTemplate or CronJob."""
    if obj["kind"] == "Deployment":
        template: Obj = obj["spec"]["template"]
    elif obj["kind"] == "PodTemplate":
        template = obj["template"]
    else:
        template = obj["spec"]["jobTemplate"]["spec"]["template"]
    return template


def workloads(group: Group) -> list[Obj]:
    return [o for o in documents(group) if o["kind"] in WORKLOADS]


def pod_labels(group: Group) -> list[dict[str, str]]:
    return [pod_template(w)["metadata"]["labels"] for w in workloads(group)]


def containers(obj: Obj) -> list[Obj]:
    spec = pod_template(obj)["spec"]
    found: list[Obj] = [*spec.get("initContainers", []), *spec["containers"]]
    return found


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", "only In is used here"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def selected_values(selector: Obj) -> list[dict[str, str]]:
    """One label set per value a selector names (to check each names a real pod)."""
    wanted = [dict(selector.get("matchLabels", {}))]
    for expression in selector.get("matchExpressions", []):
        wanted = [w | {expression["key"]: v} for w in wanted for v in expression["values"]]
    return wanted


# ------------------------------------------------------------------------------- the schema


@pytest.mark.parametrize(
    ("group", "obj"),
    list(all_objects()),
    ids=[f"{g}:{object_id(o)}" for g, o in all_objects()],
)
def test_every_object_is_valid_for_a_recent_kubernetes(group: Group, obj: Obj) -> None:
    kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)


def test_the_validation_is_strict() -> None:
    broken = copy.deepcopy(named("duchy", "Deployment", "herald-daemon"))
    broken["spec"]["template"]["spec"]["containers"][0]["arguments"] = ["--typo"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_every_manifest_file_holds_objects() -> None:
    for group in GROUPS:
        assert manifest_files(group)
    names = [object_id(o) for _, o in all_objects()]
    assert len(names) == len(set(names))


# --------------------------------------------------------------------------- cross references


@pytest.mark.parametrize("group", GROUPS)
def test_services_select_exactly_one_workload_and_named_ports(group: Group) -> None:
    for service in of_kind(group, "Service"):
        selector = service["spec"]["selector"]
        chosen = [
            w
            for w in of_kind(group, "Deployment")
            if all(pod_template(w)["metadata"]["labels"].get(k) == v for k, v in selector.items())
        ]
        assert len(chosen) == 1, object_id(service)
        port_names = {p["name"] for c in containers(chosen[0]) for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, object_id(service)


@pytest.mark.parametrize("group", GROUPS)
def test_deployment_selectors_match_their_pods(group: Group) -> None:
    for deployment in of_kind(group, "Deployment"):
        labels = pod_template(deployment)["metadata"]["labels"]
        assert selects(deployment["spec"]["selector"], labels), object_id(deployment)


@pytest.mark.parametrize("group", GROUPS)
def test_network_policies_name_only_pods_that_exist(group: Group) -> None:
    pods = pod_labels(group)
    policies = of_kind(group, "NetworkPolicy")
    assert policies
    for policy in policies:
        selectors = [policy["spec"]["podSelector"]] + [
            peer["podSelector"]
            for rule in policy["spec"].get("ingress", [])
            for peer in rule.get("from", [])
            if "podSelector" in peer
        ]
        for selector in selectors:
            for wanted in selected_values(selector):
                assert any(selects({"matchLabels": wanted}, labels) for labels in pods), (
                    f"{object_id(policy)} names {wanted}, which no pod has"
                )


@pytest.mark.parametrize("group", GROUPS)
def test_ingress_is_denied_by_default(group: Group) -> None:
    deny = [
        p
        for p in of_kind(group, "NetworkPolicy")
        if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]
    ]
    assert deny and deny[0]["spec"]["policyTypes"] == ["Ingress"]


def ingress_sources(target_app: str) -> list[Obj]:
    """Ingress rules of the duchy's policies that select pods labelled app=target_app."""
    return [
        rule
        for policy in of_kind("duchy", "NetworkPolicy")
        if selects(policy["spec"]["podSelector"], {"app": target_app})
        for rule in policy["spec"].get("ingress", [])
        if 8443 in [port["port"] for port in rule.get("ports", [])]
    ]


def test_the_internal_api_admits_exactly_the_duchy_components_that_call_it() -> None:
    (rule,) = ingress_sources("internal-api-server")
    (peer,) = rule["from"]
    allowed = set(peer["podSelector"]["matchExpressions"][0]["values"])
    callers = {
        pod_template(w)["metadata"]["labels"]["app"]
        for w in workloads("duchy")
        if any(
            source.get("configMapRef", {}).get("name") == "duchy-config"
            for c in containers(w)
            for source in c.get("envFrom", [])
        )
    } - {"internal-api-server"}
    assert allowed == callers
    assert "namespaceSelector" not in peer and "ipBlock" not in peer


def test_async_control_is_reachable_only_from_computation_control() -> None:
    (rule,) = ingress_sources("async-computation-control-server")
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app": "computation-control-server"}}}]


def test_peers_and_data_providers_reach_their_servers_and_nothing_else_is_open() -> None:
    open_to_all = {
        policy["spec"]["podSelector"]["matchLabels"]["app"]
        for policy in of_kind("duchy", "NetworkPolicy")
        for rule in policy["spec"].get("ingress", [])
        if "from" not in rule
    }
    assert open_to_all == {"computation-control-server", "requisition-fulfillment-server"}


def test_the_scheduler_flags_name_its_deployment_and_the_mill_pod_templates() -> None:
    scheduler = named("duchy", "Deployment", "mill-job-scheduler")
    flags = flag_values(containers(scheduler)[0]["args"])
    assert flags["--launcher"] == "kubernetes"
    assert flags["--deployment-name"] == scheduler["metadata"]["name"]
    templates = {t["metadata"]["name"]: t for t in of_kind("duchy", "PodTemplate")}
    named_by_flags = {flags[f"--{kind}-pod-template-name"] for kind in ("llv2", "hmss", "trustee")}
    assert named_by_flags == set(templates)
    for template in templates.values():
        spec = template["template"]["spec"]
        assert spec["restartPolicy"] == "Never"
        # The claim is appended to the first container: it must be the mill.
        assert spec["containers"][0]["command"] == ["cmms", "duchy", "mill"]


def test_rbac_grants_the_scheduler_what_the_kubernetes_launcher_calls() -> None:
    scheduler = named("duchy", "Deployment", "mill-job-scheduler")
    account = pod_template(scheduler)["spec"]["serviceAccountName"]
    named("duchy", "ServiceAccount", account)
    (binding,) = [
        b
        for b in of_kind("duchy", "RoleBinding")
        if {"kind": "ServiceAccount", "name": account} in b["subjects"]
    ]
    role = named("duchy", "Role", binding["roleRef"]["name"])
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    needed = {
        ("batch", "jobs", "get"),
        ("batch", "jobs", "list"),
        ("batch", "jobs", "create"),
        ("batch", "jobs", "delete"),
        ("", "podtemplates", "get"),
        ("apps", "deployments", "get"),
    }
    assert granted == needed
    # Nothing else in the duchy talks to the Kubernetes API.
    others = [w for w in workloads("duchy") if w["metadata"]["name"] != "mill-job-scheduler"]
    assert all(pod_template(w)["spec"].get("automountServiceAccountToken") is False for w in others)


def test_the_internal_api_migrates_its_database_first() -> None:
    internal = named("duchy", "Deployment", "internal-api-server")
    (init,) = pod_template(internal)["spec"]["initContainers"]
    assert init["command"] == ["cmms", "duchy", "db", "migrate"]
    assert init["env"][0]["name"] == env_name("database_url")
    assert init["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "duchy-db"


@pytest.mark.parametrize("group", GROUPS)
def test_servers_are_probed_on_their_health_port_and_every_container_is_bounded(
    group: Group,
) -> None:
    for workload in workloads(group):
        for container in containers(workload):
            resources = container["resources"]
            assert set(resources["requests"]) == {"cpu", "memory"} == set(resources["limits"])
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            if "health" in ports:
                for probe in ("readinessProbe", "livenessProbe"):
                    assert container[probe]["grpc"]["port"] == ports["health"] == 8080
                flags = flag_values(container["args"])
                assert flags.get("--health-port") == "8080" and flags["--host"] == "0.0.0.0"


def test_every_secret_and_config_map_the_operator_creates_is_documented() -> None:
    defined = {o["metadata"]["name"] for _, o in all_objects() if o["kind"] == "ConfigMap"}
    referenced: set[str] = set()
    for group in GROUPS:
        for workload in workloads(group):
            spec = pod_template(workload)["spec"]
            for volume in spec.get("volumes", []):
                referenced.add(volume.get("secret", {}).get("secretName", ""))
                referenced.add(volume.get("configMap", {}).get("name", ""))
            for container in containers(workload):
                for source in container.get("envFrom", []):
                    for kind in ("secretRef", "configMapRef"):
                        referenced.add(source.get(kind, {}).get("name", ""))
                for variable in container.get("env", []):
                    reference = variable.get("valueFrom", {}).get("secretKeyRef", {})
                    referenced.add(reference.get("name", ""))
    external = referenced - defined - {""}
    assert {"duchy-tls", "duchy-db", "kingdom-tls", "kingdom-db"} <= external
    text = OPERATIONS.read_text()
    assert [name for name in sorted(external) if f"`{name}`" not in text] == []


# --------------------------------------------------------------------------------- the CLI


def flag_values(args: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for arg in args:
        flag, _, value = arg.partition("=")
        values[flag] = value
    return values


def cli_command(path: tuple[str, ...]) -> Any:
    """The click command of `cmms <path>` (typer's vendored click), or None if there is none."""
    command: Any = typer.main.get_command(app)
    for part in path:
        subcommands = getattr(command, "commands", {})
        if part not in subcommands:
            return None
        command = subcommands[part]
    return command


def command_path(container: Obj) -> tuple[str, ...]:
    command = container["command"]
    assert command[0] == "cmms", container["name"]
    return tuple(command[1:])


def options_of(command: Any) -> dict[str, Any]:
    return {opt: p for p in command.params for opt in [*p.opts, *p.secondary_opts]}


def all_containers() -> Iterator[tuple[Group, Obj, Obj]]:
    for group in GROUPS:
        for workload in workloads(group):
            for container in containers(workload):
                yield group, workload, container


def test_containers_run_contract_commands_with_real_flags() -> None:
    checked, pending = 0, []
    for _, workload, container in all_containers():
        path = command_path(container)
        assert path in CONTRACT_COMMANDS, f"{object_id(workload)} runs cmms {' '.join(path)}"
        command = cli_command(path)
        if command is None:
            pending.append(path)  # Named by ARCHITECTURE.md §5; not in this build yet.
            continue
        options = options_of(command)
        for arg in container.get("args", []):
            flag = arg.partition("=")[0]
            assert re.fullmatch(r"--[a-z0-9-]+", flag), arg
            assert flag in options, f"{object_id(workload)}: cmms {' '.join(path)} has no {flag}"
        checked += 1
    assert checked >= 8, pending


def test_the_shared_duchy_settings_are_flags_of_their_consumers() -> None:
    config = named("duchy", "ConfigMap", "duchy-config")["data"]
    consumers = [
        command_path(container)
        for _, _, container in all_containers()
        if any(
            s.get("configMapRef", {}).get("name") == "duchy-config"
            for s in container.get("envFrom", [])
        )
    ]
    known: set[str] = set()
    missing_commands = []
    for path in consumers:
        command = cli_command(path)
        if command is None:
            missing_commands.append(path)
            continue
        known |= {env_name(p.name) for p in command.params if p.name}
    unknown = sorted(set(config) - known)
    if unknown and missing_commands:
        # A command not in this build may be the one that reads these.
        pytest.skip(f"cannot check {unknown} until {missing_commands} exist")
    assert unknown == []


def test_the_cleaner_purges_hourly_with_the_time_to_live_flag() -> None:
    cleaner = named("duchy", "CronJob", "computations-cleaner")
    assert cleaner["spec"]["schedule"] == "0 * * * *"
    assert cleaner["spec"]["concurrencyPolicy"] == "Forbid"
    flags = flag_values(containers(cleaner)[0]["args"])
    assert flags["--computations-time-to-live"] == "180d"
