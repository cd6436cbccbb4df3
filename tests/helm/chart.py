"""The chart as tests see it: loaded and rendered through the Helm SDK (Helm v4, in-process),
split into Kubernetes objects. Shared by the offline chart tests and the install test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "regsandbox"
PRODUCTION_VALUES = CHART / "values-production.yaml"
# Two current Kubernetes versions the rendered objects must be valid for (kubernetes-validate
# ships schemas for 1.25 to 1.37).
KUBE_VERSIONS = ("1.33", "1.37")


def production_values() -> dict[str, Any]:
    return yaml.safe_load(PRODUCTION_VALUES.read_text(encoding="utf-8"))


def render(
    values: dict[str, Any] | None = None, name: str = "rs", namespace: str = "regsandbox"
) -> dict[str, str]:
    """Template path -> rendered text (NOTES.txt included)."""
    import helm_python as helm

    return helm.Chart.load(CHART).render(values or {}, name=name, namespace=namespace)


def objects(rendered: dict[str, str]) -> list[dict[str, Any]]:
    """Every Kubernetes object of a render, in template order."""
    found = []
    for path, text in sorted(rendered.items()):
        if not path.endswith(".yaml"):
            continue
        found += [doc for doc in yaml.safe_load_all(text) if doc]
    return found


def pod_specs(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Pod templates of the workloads, by workload name."""
    return {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]
        for o in objs
        if o["kind"] in ("Deployment", "StatefulSet")
    }
