"""MLflow alias -> InferenceService canary -> watched -> promoted or rolled back, one step per function; each
step takes and returns JSON-able dicts (Airflow passes them between tasks as XCom) and logs what it did.

KServe v0.20.0's canary semantics (pkg/controller/v1beta1/inferenceservice/reconcilers/knative/
ksvc_reconciler.go and pkg/apis/serving/v1beta1/inference_service_status.go PropagateStatus), which every
step relies on:
- with `canaryTrafficPercent: P` and a revision already rolled out at 100 %, the Knative Service's traffic is
  P % to the latest *ready* revision and 100-P % to `status.components.predictor.latestRolledoutRevision`;
  without a rolled-out revision (a new InferenceService) everything goes to the latest revision;
- when the latest ready revision gets 100 % (P = 100, or no P), it becomes latestRolledoutRevision and the one
  before it previousRolledoutRevision: that is the promotion;
- `canaryTrafficPercent: 0` sends everything back to latestRolledoutRevision at once: the rollback.
Because the P % go to the latest *ready* revision, the canary is judged only once the new revision is ready
(until then they go to the old one). A rollback also restores the previous storageUri while the traffic is
pinned at 0 %, then, once that (identical) revision is ready, gives it 100 %, so the spec says what serves and
later changes to the InferenceService roll out normally instead of landing at 0 %.
"""

from __future__ import annotations

import logging
import string
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mlplatform_client.models import model_artifact_uri, storage_location

from .clients import (
    InferenceServices,
    MlflowRegistry,
    Prometheus,
    PrometheusError,
)

log = logging.getLogger("mlplatform.deploy")

# tags on the MLflow model version: the outcome and why
STATUS_TAG, REASON_TAG, REVISION_TAG = "deployment.status", "deployment.reason", "deployment.revision"
PROMOTED, ROLLED_BACK = "promoted", "rolled_back"
# annotations on the InferenceService (owned by the flow's field manager): what it deployed and from what
ANNOTATION = "mlplatform.io"
MODEL_VERSION_ANNOTATION = f"{ANNOTATION}/model-version"
PREVIOUS_URI_ANNOTATION = f"{ANNOTATION}/previous-storage-uri"
STATUS_ANNOTATION = f"{ANNOTATION}/deployment-status"
CANARY = "canary"


@dataclass(frozen=True)
class ModelTarget:
    """One model the platform serves (the `serving_models` Airflow variable, JSON, one object per model):
    `name` is the InferenceService, `registeredModel` and `alias` where its versions come from. The rest has
    defaults: the canary's share, how long it is watched and how often, and how long its revision may take
    to become ready."""

    name: str
    registered_model: str
    alias: str = "production"
    canary_percent: int = 10
    watch_seconds: float = 600
    check_seconds: float = 30
    ready_seconds: float = 900

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ModelTarget:
        known = {
            "name": "name",
            "registeredModel": "registered_model",
            "alias": "alias",
            "canaryPercent": "canary_percent",
            "watchSeconds": "watch_seconds",
            "checkSeconds": "check_seconds",
            "readySeconds": "ready_seconds",
        }
        unknown = set(doc) - set(known)
        if unknown:
            raise ValueError(f"serving model {doc.get('name')!r}: unknown keys {sorted(unknown)}")
        target = cls(**{known[k]: v for k, v in doc.items()})
        if not 0 < target.canary_percent < 100:
            raise ValueError(f"serving model {target.name}: canaryPercent must be between 1 and 99")
        return target

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Services:
    """Where the flow's clients point (built by the DAG from the platform's Airflow variables)."""

    registry: MlflowRegistry
    isvcs: InferenceServices
    prometheus: Prometheus
    artifacts_destination: str  # the stack output mlflowArtifactsDestination
    queries: Mapping[str, Any]  # components/observability/alerts.py canary_queries
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


def _predictor_status(isvc: Mapping[str, Any]) -> dict[str, Any]:
    return ((isvc.get("status") or {}).get("components") or {}).get("predictor") or {}


def _storage_uri(isvc: Mapping[str, Any]) -> str | None:
    return ((isvc.get("spec") or {}).get("predictor") or {}).get("model", {}).get("storageUri")


def _annotations(isvc: Mapping[str, Any]) -> dict[str, str]:
    return dict((isvc.get("metadata") or {}).get("annotations") or {})


def find_new_versions(targets: Sequence[ModelTarget], s: Services) -> list[dict[str, Any]]:
    """For each model: the version holding its alias, unless it already serves, was rolled back before, or
    no version holds the alias. A canary a run left unfinished (status annotation `canary`) is picked up
    again to be watched."""
    plans: list[dict[str, Any]] = []
    for t in targets:
        version = s.registry.version_by_alias(t.registered_model, t.alias)
        if version is None:
            log.info("%s: no version of %s holds alias %r; nothing to deploy", t.name, t.registered_model, t.alias)
            continue
        label = f"{t.registered_model} version {version.version}"
        if version.tags.get(STATUS_TAG) == ROLLED_BACK:
            log.info(
                "%s: %s (alias %r) was rolled back before (%s); not deployed again. Give the alias to another "
                "version, or delete its %s tag to retry it",
                t.name, label, t.alias, version.tags.get(REASON_TAG, "no reason recorded"), STATUS_TAG,
            )  # fmt: skip
            continue
        isvc = s.isvcs.get(t.name)
        if isvc is None:
            # The program creates every configured model's InferenceService (serving.models[]); one the flow
            # created would make that create fail (the object exists) and would lack the program's spec.
            log.warning(
                "%s: no InferenceService %s in %s yet: it is created by `pulumi up` from serving.models[]; "
                "%s is deployed once it exists",
                t.name, t.name, s.isvcs.namespace, label,
            )  # fmt: skip
            continue
        uri = storage_location(model_artifact_uri(s.registry, version), s.artifacts_destination)
        current = _storage_uri(isvc)
        plan = {"target": t.to_json(), "version": version.version, "storageUri": uri}
        if current == uri:
            if _annotations(isvc).get(STATUS_ANNOTATION) == CANARY:
                log.info("%s: %s is an unfinished canary; watching it again", t.name, label)
                previous = _annotations(isvc).get(PREVIOUS_URI_ANNOTATION)
                plans.append(plan | {"previousStorageUri": previous, "resume": True})
            else:
                log.info("%s: already serves %s (%s); nothing changes", t.name, label, uri)
            continue
        log.info("%s: %s newly holds alias %r: %s -> %s", t.name, label, t.alias, current, uri)
        plans.append(plan | {"previousStorageUri": current})
    return plans


def _wait_ready(s: Services, name: str, before: str | None, timeout: float, interval: float) -> str | None:
    """The InferenceService's new latest revision once KServe has seen the spec (observedGeneration) and
    that revision is ready; None after `timeout`."""
    deadline = s.clock() + timeout
    while True:
        isvc = s.isvcs.get(name) or {}
        status, pred = isvc.get("status") or {}, _predictor_status(isvc)
        seen = status.get("observedGeneration", 0) >= (isvc.get("metadata") or {}).get("generation", 0)
        ready, created = pred.get("latestReadyRevision"), pred.get("latestCreatedRevision")
        if seen and ready and ready == created and ready != before:
            return ready
        if s.clock() >= deadline:
            log.warning("%s: latest revision %s not ready after %.0f s (ready: %s)", name, created, timeout, ready)
            return None
        s.sleep(interval)


def roll_out(plan: Mapping[str, Any], s: Services) -> dict[str, Any]:
    """Applies the new storageUri at the target's canary percent, then waits for the new revision."""
    t = ModelTarget(**plan["target"])
    annotations = {
        MODEL_VERSION_ANNOTATION: f"{t.registered_model}/{plan['version']}",
        PREVIOUS_URI_ANNOTATION: plan.get("previousStorageUri") or "",
        STATUS_ANNOTATION: CANARY,
    }
    rollout = dict(plan)
    if plan.get("resume"):
        pred = _predictor_status(s.isvcs.get(t.name) or {})
        rollout |= {
            "canaryRevision": pred.get("latestReadyRevision"),
            "stableRevision": pred.get("latestRolledoutRevision"),
        }
        log.info("%s: resuming the canary %s (stable %s)", t.name, rollout["canaryRevision"], rollout["stableRevision"])
        return rollout
    before = _predictor_status(s.isvcs.get(t.name) or {})
    stable = before.get("latestRolledoutRevision")
    s.isvcs.apply(t.name, plan["storageUri"], t.canary_percent, annotations)
    log.info(
        "%s: applied storageUri %s with canaryTrafficPercent %d (stable revision %s keeps %d %%)",
        t.name, plan["storageUri"], t.canary_percent, stable, 100 - t.canary_percent,
    )  # fmt: skip
    revision = _wait_ready(s, t.name, before.get("latestReadyRevision"), t.ready_seconds, t.check_seconds)
    if revision is not None:
        log.info("%s: canary revision %s is ready and takes %d %% of requests", t.name, revision, t.canary_percent)
    return rollout | {"canaryRevision": revision, "stableRevision": stable}


@dataclass
class Verdict:
    healthy: bool
    reason: str
    checks: list[dict[str, Any]] = field(default_factory=list)


def _queries(s: Services, namespace: str, revision: str) -> dict[str, str]:
    values = {"namespace": namespace, "revision": revision}
    return {k: string.Template(s.queries[k]).substitute(values) for k in ("requests", "errorRate", "p99Seconds")}


def judge(rollout: Mapping[str, Any], s: Services) -> Verdict:
    """Watches the canary revision for the target's window with the alert rules' expressions and thresholds:
    unhealthy at the first check whose error rate (with enough traffic to judge) or p99 is above them;
    healthy when the window ends with every check answered and at least one judged on enough traffic.
    Prometheus not answering is never healthy: no promotion without evidence."""
    t = ModelTarget(**rollout["target"])
    revision = rollout.get("canaryRevision")
    if revision is None:
        return Verdict(False, f"the canary revision did not become ready within {t.ready_seconds:.0f} s")
    q, limits = _queries(s, s.isvcs.namespace, revision), s.queries
    min_rps, max_errors, max_p99 = limits["minRequestsPerSecond"], limits["maxErrorRate"], limits["maxP99Seconds"]
    checks: list[dict[str, Any]] = []
    judged, unreachable = 0, None
    deadline = s.clock() + t.watch_seconds
    while True:
        try:
            rps, errors, p99 = (s.prometheus.value(q[k]) for k in ("requests", "errorRate", "p99Seconds"))
        except PrometheusError as e:
            unreachable = str(e)
            log.warning("%s: check of canary %s failed: %s", t.name, revision, e)
            checks.append({"error": str(e)})
        else:
            check = {"requestsPerSecond": rps, "errorRate": errors, "p99Seconds": p99}
            checks.append(check)
            log.info("%s: canary %s: %.3f req/s, error rate %s, p99 %s s", t.name, revision, rps or 0.0, errors, p99)
            enough = rps is not None and rps > min_rps
            if enough and errors is not None and errors > max_errors:
                return Verdict(False, f"error rate {errors:.1%} above {max_errors:.1%} on {revision}", checks)
            if p99 is not None and p99 > max_p99:
                return Verdict(False, f"p99 latency {p99:.3f} s above {max_p99} s on {revision}", checks)
            judged += enough
        if s.clock() >= deadline:
            break
        s.sleep(t.check_seconds)
    if unreachable is not None:
        return Verdict(False, f"canary not verified: {unreachable}", checks)
    if not judged:
        return Verdict(
            False, f"no check saw more than {min_rps} req/s on {revision}: not enough traffic to judge", checks
        )
    return Verdict(True, f"{judged} checks within error rate {max_errors:.1%} and p99 {max_p99} s", checks)


def _follows_alias(uri: str) -> bool:
    """A `models:/<name>@<alias>` storage URI: which version it loads is decided when each pod starts."""
    return uri.startswith("models:/") and "@" in uri


def conclude(rollout: Mapping[str, Any], verdict: Verdict, s: Services) -> dict[str, Any]:
    """Promotes a healthy canary to 100 %, otherwise rolls back to the stable revision; tags the MLflow
    version with the outcome and the reason either way."""
    t = ModelTarget(**rollout["target"])
    version, uri, revision = rollout["version"], rollout["storageUri"], rollout.get("canaryRevision")
    annotations = {
        MODEL_VERSION_ANNOTATION: f"{t.registered_model}/{version}",
        PREVIOUS_URI_ANNOTATION: rollout.get("previousStorageUri") or "",
    }
    if verdict.healthy:
        s.isvcs.apply(t.name, uri, 100, annotations | {STATUS_ANNOTATION: PROMOTED})
        log.info("%s: promoted %s (version %s) to 100 %%: %s", t.name, revision, version, verdict.reason)
        outcome = PROMOTED
    elif not rollout.get("previousStorageUri"):
        # nothing to go back to (an InferenceService without a storageUri): it stays, and the version is tagged
        log.error("%s: version %s is unhealthy and there is no previous model to go back to: %s",
                  t.name, version, verdict.reason)  # fmt: skip
        outcome = ROLLED_BACK
    elif _follows_alias(rollout["previousStorageUri"]):
        # the program's first storageUri, `models:/<model>@<alias>`, is resolved when a pod starts: restored,
        # it would load the alias's version, the one being rolled back. Traffic stays pinned instead.
        annotations[STATUS_ANNOTATION] = ROLLED_BACK
        s.isvcs.apply(t.name, uri, 0, annotations)
        log.warning(
            "%s: rolled back: canaryTrafficPercent 0 sends every request to %s (%s). The previous storageUri %s "
            "follows the alias, which names the rolled-back version, so it is not restored: move the alias back "
            "to a good version; the next deployment replaces the spec",
            t.name, rollout.get("stableRevision"), verdict.reason, rollout["previousStorageUri"],
        )  # fmt: skip
        outcome = ROLLED_BACK
    else:
        previous = rollout["previousStorageUri"]
        annotations[STATUS_ANNOTATION] = ROLLED_BACK
        s.isvcs.apply(t.name, previous, 0, annotations)
        log.warning(
            "%s: rolled back: canaryTrafficPercent 0 sends every request to %s; storageUri restored to %s (%s)",
            t.name, rollout.get("stableRevision"), previous, verdict.reason,
        )  # fmt: skip
        restored = _wait_ready(s, t.name, revision, t.ready_seconds, t.check_seconds)
        if restored is not None:
            s.isvcs.apply(t.name, previous, 100, annotations)
            log.info("%s: the restored revision %s is ready and takes 100 %%", t.name, restored)
        else:
            log.warning("%s: the restored revision is not ready; traffic stays pinned to %s at 0 %% canary",
                        t.name, rollout.get("stableRevision"))  # fmt: skip
        outcome = ROLLED_BACK
    tags = {STATUS_TAG: outcome, REASON_TAG: verdict.reason, REVISION_TAG: revision or ""}
    for key, value in tags.items():
        s.registry.set_tag(t.registered_model, version, key, value)
    log.info("%s: tagged %s version %s %s", t.name, t.registered_model, version, tags)
    return {"model": t.name, "version": version, "outcome": outcome, "reason": verdict.reason, "checks": verdict.checks}
