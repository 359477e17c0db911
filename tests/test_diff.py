"""The credential-free preview diff between two plan documents."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlplatform.plan.diff import diff_plans, flat_diff, render_diff
from mlplatform.plan.document import PlanDocument
from tests.support.managed import managed_stack

ROOT = Path(__file__).resolve().parents[1]


def test_identical_plans_have_no_diff(dev: PlanDocument) -> None:
    assert diff_plans(dev, dev).empty


def test_dev_to_prod_lists_added_removed_and_changed(dev: PlanDocument, prod: PlanDocument) -> None:
    # dev's default in-cluster PostgreSQL becomes prod's RDS: the one is removed, the other added
    d = diff_plans(dev, prod)
    assert "mlplatform:data:Data$aws:rds/instance:Instance::mlplatform-postgres" in d.added
    assert any("$kubernetes:postgresql.cnpg.io/v1:Cluster::" in key for key in d.removed)
    # with RDS in both (dev's data.postgres.mode managed), the instance itself changes
    dev = managed_stack("dev", ("postgres",))
    d = diff_plans(dev, prod)
    # prod adds a NAT gateway per extra zone and two read replicas; renames the GPU pool.
    assert "mlplatform:cluster:Cluster$aws:ec2/natGateway:NatGateway::mlplatform-nat-us-east-1c" in d.added
    assert "mlplatform:data:Data$aws:rds/instance:Instance::mlplatform-postgres-replica-2" in d.added
    assert "mlplatform:cluster:Cluster$aws:eks/nodeGroup:NodeGroup::mlplatform-gpu" in d.removed
    changed = {c.key: c.changes for c in d.changed}
    rds = changed["mlplatform:data:Data$aws:rds/instance:Instance::mlplatform-postgres"]
    assert rds["multiAz"] == (False, True)
    assert rds["deletionProtection"] == (False, True)
    assert rds["<protect>"] == (False, True)
    text = render_diff(d, dev, prod)
    assert text.startswith("diff dev -> prod: +")
    assert "      multiAz: false -> true" in text


def test_flat_diff_reports_leaf_paths() -> None:
    a = {"spec": {"replicas": 1, "ports": [80, 443], "x": "same"}}
    b = {"spec": {"replicas": 3, "ports": [80, 8443], "y": True, "x": "same"}}
    assert flat_diff(a, b, "") == {
        "spec.replicas": (1, 3),
        "spec.ports[1]": (443, 8443),
        "spec.y": (flat_diff.__globals__["_ABSENT"], True),
    }


def test_diff_command_on_two_plan_files(dev: PlanDocument, prod: PlanDocument, tmp_path: Path) -> None:
    dev.write(tmp_path / "dev.json")
    prod.write(tmp_path / "prod.json")
    result = subprocess.run(
        [sys.executable, "-m", "mlplatform", "diff", str(tmp_path / "dev.json"), str(tmp_path / "prod.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "+ mlplatform:data:Data$aws:rds/instance:Instance::mlplatform-postgres-replica-1" in result.stdout


def test_ignore_parents_sees_moves_as_nothing_and_lists_renames(dev: PlanDocument) -> None:
    """A refactor that moves objects into new components and renames one must show only the rename."""
    import dataclasses

    moved, renamed = [], None
    for r in dev.resources:
        if r.type == "kubernetes:core/v1:ServiceAccount":
            r = dataclasses.replace(
                r, urn=r.urn.replace("mlplatform:lifecycle:Lifecycle$mlplatform:lifecycle:MLflow$", "mlplatform:x:Svc$")
            )
        if r.name == "mlplatform-mlflow-db-secret":
            renamed = r
            r = dataclasses.replace(
                r, name="mlflow-db", urn=r.urn.replace("::mlplatform-mlflow-db-secret", "::mlflow-db")
            )
        moved.append(r)
    after = dataclasses.replace(dev, resources=moved)
    assert renamed is not None
    plain = diff_plans(dev, after)
    assert plain.added and plain.removed  # by URN, every moved object looks replaced
    d = diff_plans(dev, after, ignore_parents=True)
    assert (d.added, d.removed, d.changed) == ([], [], [])
    assert d.renamed == [(f"{renamed.type}::mlplatform-mlflow-db-secret", f"{renamed.type}::mlflow-db")]
    assert "no differences but the renamed logical names" in render_diff(d, dev, after)
