"""What each Helm mechanism really applies (mlplatform/helm_apply.py), checked on the pinned charts: hooks
are skipped by helm.v4.Chart and run by helm.v3.Release; a pod that loads an object nobody applies is a
finding; an ordinary Job of a helm.v3.Release must not outlive its run."""

from __future__ import annotations

from mlplatform.helm_apply import V3_RELEASE, V4_CHART, applied, hooks_of, lingering_jobs, missing_references
from mlplatform.manifests import program_objects

FLASK_SECRET = ("mlplatform", "Secret", "mlflow-flask-server-secret-key")


def test_a_v4_chart_skips_hooks_and_a_v3_release_runs_them(rendered) -> None:
    mlflow = rendered("dev").release("mlflow")  # a helm.v4.Chart
    assert not [o for o in mlflow.objects if hooks_of(o)]
    prometheus = rendered("dev").release("kube-prometheus-stack")  # a helm.v3.Release
    assert {o["metadata"]["name"] for o in prometheus.objects if hooks_of(o) and o["kind"] == "Job"} >= {
        "kube-prometheus-stack-admission-create"
    }
    test_hook = {"kind": "Pod", "metadata": {"annotations": {"helm.sh/hook": "test"}}}
    assert applied(V3_RELEASE, [test_hook]) == [] and applied(V4_CHART, [test_hook]) == []


def test_a_pod_needing_a_secret_only_a_skipped_hook_makes_is_a_finding(dev, rendered) -> None:
    """MLflow's chart makes its flask key Secret only as a pre-install hook: without the program's own
    Secret (as before the fix) the server's pods never start, and the check says so."""
    report = rendered("dev")
    mlflow = report.release("mlflow")
    every = {(o["metadata"]["namespace"], o["kind"], o["metadata"]["name"]) for r in report.releases for o in r.objects}
    existing = program_objects(dev) | every
    assert FLASK_SECRET in existing and not missing_references("mlflow", mlflow.objects, existing)
    found = missing_references("mlflow", mlflow.objects, existing - {FLASK_SECRET})
    assert found and all(FLASK_SECRET[2] in v.rule for v in found)


def test_an_ordinary_job_of_a_v3_release_must_be_gone_once_finished() -> None:
    job = {"kind": "Job", "metadata": {"name": "migrate"}, "spec": {"ttlSecondsAfterFinished": 300}}
    assert lingering_jobs("airflow", V3_RELEASE, [job])
    assert not lingering_jobs("airflow", V3_RELEASE, [{**job, "spec": {"ttlSecondsAfterFinished": 0}}])
    hook = {**job, "metadata": {"name": "migrate", "annotations": {"helm.sh/hook": "post-upgrade"}}}
    assert not lingering_jobs("airflow", V3_RELEASE, [hook])
    assert not lingering_jobs("mlflow", V4_CHART, [job])  # Pulumi replaces a changed Job itself
