"""Questions about a plan's dependency graph that several tests ask."""

from __future__ import annotations

from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import Registration


def depends(doc: PlanDocument, later: Registration, earlier: Registration) -> bool:
    """Whether `later` waits for `earlier`, directly or through what it waits for."""
    index, seen, todo = {r.urn: r for r in doc.resources}, set(), list(later.dependencies)
    while todo:
        urn = todo.pop()
        if urn == earlier.urn:
            return True
        if urn not in seen and urn in index:
            seen.add(urn)
            todo += index[urn].dependencies
    return False


def helm_release(doc: PlanDocument, name: str) -> Registration:
    """The one chart installed under release name `name`, as a helm.v3.Release or a helm.v4.Chart."""
    [found] = [
        r
        for r in doc.resources
        if r.type in ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
        and r.inputs.get("name", r.name) == name
    ]
    return found


def platform_dags(doc: PlanDocument) -> tuple[dict[str, str], list[dict[str, str]] | None]:
    """The platform's DAG ConfigMap's data and the `items` Airflow's pods mount it with (each key at its path:
    the DAGs' packages come back as directories)."""
    values = helm_release(doc, "airflow").inputs["values"]
    [volume] = [v for v in values["volumes"] if v["name"] == "platform-dags"]
    [cm] = [
        r for r in doc.by_type("kubernetes:core/v1:ConfigMap")
        if r.inputs["metadata"].get("name") == volume["configMap"]["name"]
    ]  # fmt: skip
    return cm.inputs["data"], volume["configMap"].get("items")
