"""The Helm chart, offline: it lints with no error through the Helm SDK, renders for the default
and production values, every rendered object is valid for two current Kubernetes versions
(strict: unknown fields are errors), and the security properties the platform promises hold in
what it renders. No cluster needed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helm.chart import CHART, KUBE_VERSIONS, objects, pod_specs, production_values, render

helm = pytest.importorskip("helm_python")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

VALUE_SETS = {"default": {}, "production": production_values()}


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]], dict[str, str]]:
    out = render(VALUE_SETS[request.param])
    return request.param, objects(out), out


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
@pytest.mark.parametrize("kube_version", ["v1.20.2", "v1.33.0", "v1.37.0"])
def test_lint_strict_has_no_error(values: str, kube_version: str) -> None:
    report = helm.lint(CHART, VALUE_SETS[values], strict=True, kube_version=kube_version)
    assert report["total_charts_linted"] == 1
    # Severity 2 is a warning, 3 an error: strict lint fails on both. Info ("icon is recommended") may stay.
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


def test_renders_the_whole_platform(rendered: tuple[str, list[dict[str, Any]], dict[str, str]]) -> None:
    name, objs, out = rendered
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objs}
    expected = {
        ("Deployment", "rs-regsandbox-platform"),
        ("Deployment", "rs-regsandbox-prefect"),
        ("Deployment", "rs-regsandbox-mlflow"),
        ("Service", "rs-regsandbox-platform"),
        ("Service", "rs-regsandbox-prefect"),
        ("Service", "rs-regsandbox-mlflow"),
        ("ClusterRole", "rs-regsandbox-trials"),
        ("ClusterRoleBinding", "rs-regsandbox-trials"),
        ("ServiceAccount", "rs-regsandbox-runner"),
        ("PersistentVolumeClaim", "rs-regsandbox-home"),
    }
    assert expected <= kinds
    bundled = ("StatefulSet", "rs-regsandbox-postgresql") in kinds
    assert bundled == (name == "default")
    assert (("Ingress", "rs-regsandbox-platform") in kinds) == (name == "production")
    assert "admin" in out["regsandbox/templates/NOTES.txt"]


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_object_validates_strictly(
    rendered: tuple[str, list[dict[str, Any]], dict[str, str]], kube_version: str
) -> None:
    _, objs, _ = rendered
    failures = []
    for obj in objs:
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc}")
    assert failures == []
    assert len(objs) >= 13


def test_every_container_runs_restricted(rendered: tuple[str, list[dict[str, Any]], dict[str, str]]) -> None:
    _, objs, _ = rendered
    pods = pod_specs(objs)
    assert len(pods) >= 3
    for workload, pod in pods.items():
        assert pod["securityContext"]["runAsNonRoot"] is True, workload
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False, workload
        for container in pod.get("initContainers", []) + pod["containers"]:
            ctx = container["securityContext"]
            where = f"{workload}/{container['name']}"
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["capabilities"] == {"drop": ["ALL"]}, where
            assert container["resources"]["limits"]["memory"], where
            assert container["resources"]["requests"]["cpu"], where


def test_servers_have_probes_and_explicit_protocols(
    rendered: tuple[str, list[dict[str, Any]], dict[str, str]],
) -> None:
    _, objs, _ = rendered
    for pod in pod_specs(objs).values():
        for container in pod["containers"]:
            if container.get("ports"):
                assert "readinessProbe" in container and "livenessProbe" in container, container["name"]
                assert all(p["protocol"] == "TCP" for p in container["ports"])
    # Helm v4 applies server-side; 1.20's API server needs the protocol written out.
    for svc in (o for o in objs if o["kind"] == "Service"):
        assert all(p["protocol"] == "TCP" for p in svc["spec"]["ports"]), svc["metadata"]["name"]


def test_only_the_runner_gets_a_token(rendered: tuple[str, list[dict[str, Any]], dict[str, str]]) -> None:
    _, objs, _ = rendered
    token_mounts = []
    for workload, pod in pod_specs(objs).items():
        projected = {v["name"] for v in pod.get("volumes", []) if "projected" in v}
        for container in pod.get("initContainers", []) + pod["containers"]:
            if any(m["name"] in projected for m in container.get("volumeMounts", [])):
                token_mounts.append(f"{workload}/{container['name']}")
    assert token_mounts == ["rs-regsandbox-platform/runner"]


def test_runner_may_manage_trial_namespaces_and_nothing_more(
    rendered: tuple[str, list[dict[str, Any]], dict[str, str]],
) -> None:
    _, objs, _ = rendered
    (role,) = (o for o in objs if o["kind"] == "ClusterRole")
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert not any("*" in item for triple in granted for item in triple)
    resources = {resource for _, resource, _ in granted}
    assert resources == {
        "namespaces", "pods", "services", "resourcequotas", "limitranges", "pods/log", "events",
        "pods/exec", "pods/portforward", "deployments", "networkpolicies", "endpoints", "nodes/proxy",
    }  # fmt: skip
    # Secrets and config maps of other namespaces stay out of reach; the one endpoints object and
    # the kubelets' summaries are read-only.
    assert {v for _, r, v in granted if r in ("endpoints", "nodes/proxy")} == {"get"}
    (endpoints,) = (rule for rule in role["rules"] if "endpoints" in rule["resources"])
    assert endpoints["resourceNames"] == ["kubernetes"]
    # Read-only where the backend only observes; no update/escalate/bind anywhere.
    assert {v for _, r, v in granted if r in ("pods/log", "events")} == {"get", "list", "watch"}
    assert not {v for _, _, v in granted} & {"update", "escalate", "bind", "impersonate", "deletecollection"}
    (binding,) = (o for o in objs if o["kind"] == "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rs-regsandbox-runner", "namespace": "regsandbox"}
    ]


def test_node_stats_can_be_withheld() -> None:
    (role,) = (o for o in objects(render({"rbac": {"nodeStats": False}})) if o["kind"] == "ClusterRole")
    assert not [rule for rule in role["rules"] if "nodes/proxy" in rule["resources"]]
    assert not [
        o for o in objects(render({"rbac": {"create": False}})) if o["kind"].startswith("ClusterRole")
    ]


def test_persistence_off_and_no_keep_leave_no_claims() -> None:
    objs = objects(render({"persistence": {"enabled": False}}))
    assert not [o for o in objs if o["kind"] == "PersistentVolumeClaim"]
    kept = objects(render({"persistence": {"keepOnUninstall": False}}))
    claims = [o for o in kept if o["kind"] == "PersistentVolumeClaim"]
    assert len(claims) == 3 and all("annotations" not in c["metadata"] for c in claims)


def test_generated_passwords_are_random_and_given_ones_kept() -> None:
    def secret(values: dict[str, Any], name: str) -> str:
        (found,) = (
            o for o in objects(render(values)) if o["kind"] == "Secret" and o["metadata"]["name"] == name
        )
        return found["data"]["password"]

    assert secret({}, "rs-regsandbox-db") != secret({}, "rs-regsandbox-db")
    import base64

    given = {"postgresql": {"password": "s3cretPassw0rd"}}
    assert base64.b64decode(secret(given, "rs-regsandbox-db")).decode() == "s3cretPassw0rd"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"platform": {"port": "eighty"}}, "/platform/port"),
        ({"persistence": {"enabled": "yes"}}, "/persistence/enabled"),
        ({"runner": {"maxSandboxes": 2.5}}, "/runner/maxSandboxes"),
        ({"image": {"repository": "x", "tag": 1}}, "/image/tag"),
        ({"ingress": {"tls": "regsandbox-tls"}}, "/ingress/tls"),
        ({"runner": {"backend": "vm"}}, "/runner/backend"),
        ({"postgresql": {"password": "has@sign"}}, "/postgresql/password"),
        ({"platfrom": {"port": 80}}, "platfrom"),
        ({"postgresql": {"bundled": False}}, "/externalDatabase/existingSecret"),
    ],
)
def test_bad_values_are_refused_naming_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        render(values)
    assert field in str(refused.value)


def test_only_the_platform_servers_reach_the_bundled_database() -> None:
    (policy,) = (o for o in objects(render()) if o["kind"] == "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "postgresql"
    (rule,) = policy["spec"]["ingress"]
    (source,) = rule["from"]
    allowed = {e["key"]: e["values"] for e in source["podSelector"]["matchExpressions"]}
    assert allowed == {
        "app.kubernetes.io/instance": ["rs"],
        "app.kubernetes.io/component": ["platform", "prefect", "mlflow"],
    }
    assert rule["ports"] == [{"port": 5432, "protocol": "TCP"}]
    assert not [
        o for o in objects(render({"networkPolicy": {"enabled": False}})) if o["kind"] == "NetworkPolicy"
    ]
