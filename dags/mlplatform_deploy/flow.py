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
PROMOTED, ROLLED_BACK, NOT_READY = "promoted", "rolled_back", "not_ready"
# annotations on the InferenceService (owned by the flow's field manager): which version its storageUri is
# and the storageUri that one replaced. KServe copies an InferenceService's annotations into every component's
# revision template (kserve v0.20.0 pkg/controller/v1beta1/inferenceservice/components/predictor.go
# buildObjectMeta, filtered only by pkg/constants ServiceAnnotationDisallowedList), so a changed annotation is
# a new revision: these two change only together with storageUri, in the same apply. The deployment's state
# is read from canaryTrafficPercent instead (1-99 an unfinished canary, 0 rolled back, 100 or none serving).
ANNOTATION = "mlplatform.io"
MODEL_VERSION_ANNOTATION = f"{ANNOTATION}/model-version"
PREVIOUS_URI_ANNOTATION = f"{ANNOTATION}/previous-storage-uri"


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


def _canary_percent(isvc: Mapping[str, Any]) -> int | None:
    return ((isvc.get("spec") or {}).get("predictor") or {}).get("canaryTrafficPercent")


def _follows_alias(uri: str | None) -> bool:
    """A `models:/<name>@<alias>` storage URI (the program's first one): which version it loads is decided
    when each pod starts."""
    return bool(uri) and uri.startswith("models:/") and "@" in uri


def find_new_versions(targets: Sequence[ModelTarget], s: Services) -> list[dict[str, Any]]:
    """For each model: the version holding its alias, unless it already serves, was rolled back before, or
    no version holds the alias. A canary a run left unfinished (canaryTrafficPercent between 1 and 99) is
    picked up again to be watched. An InferenceService still on the program's `models:/<name>@<alias>` URI
    is pinned to the version's files at full traffic: its pods already load the alias's version, so there
    is nothing to compare a canary with, and a rollback could not go back to a URI that follows the alias."""
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
        served = _annotations(isvc).get(MODEL_VERSION_ANNOTATION) or None
        if current == uri:
            if 0 < (_canary_percent(isvc) or 100) < 100:
                log.info("%s: %s is an unfinished canary; watching it again", t.name, label)
                previous = _annotations(isvc).get(PREVIOUS_URI_ANNOTATION) or None
                plans.append(plan | {"previousStorageUri": previous, "resume": True})
            else:
                log.info("%s: already serves %s (%s); nothing changes", t.name, label, uri)
            continue
        if _follows_alias(current):
            log.info("%s: serves %s, which follows the alias: pinning it to %s (%s) at 100 %%, no canary",
                     t.name, current, label, uri)  # fmt: skip
            plans.append(plan | {"previousStorageUri": current, "pin": True})
            continue
        log.info("%s: %s newly holds alias %r: %s -> %s", t.name, label, t.alias, current, uri)
        plans.append(plan | {"previousStorageUri": current, "previousVersion": served})
    return plans


def _latest_created(s: Services, name: str) -> str | None:
    return _predictor_status(s.isvcs.get(name) or {}).get("latestCreatedRevision")


def _wait_ready(s: Services, name: str, created_before: str | None, timeout: float, interval: float) -> str | None:
    """The predictor's revision created after `created_before` (the latest created one before the apply),
    once it is ready; None after `timeout`. Not the InferenceService's observedGeneration: KServe v0.20.0 sets
    it from the last component's Knative Service (inference_service_status.go PropagateStatus; with a
    transformer, the transformer's), whose generation does not follow a predictor-only change."""
    deadline = s.clock() + timeout
    while True:
        pred = _predictor_status(s.isvcs.get(name) or {})
        ready, created = pred.get("latestReadyRevision"), pred.get("latestCreatedRevision")
        if created and created != created_before and ready == created:
            return ready
        if s.clock() >= deadline:
            log.warning("%s: latest revision %s not ready after %.0f s (ready: %s)", name, created, timeout, ready)
            return None
        s.sleep(interval)


def _deployed(t: ModelTarget, version: str, previous_uri: str | None) -> dict[str, str]:
    return {
        MODEL_VERSION_ANNOTATION: f"{t.registered_model}/{version}",
        PREVIOUS_URI_ANNOTATION: previous_uri or "",
    }


def roll_out(plan: Mapping[str, Any], s: Services) -> dict[str, Any]:
    """Applies the new storageUri at the target's canary percent (at 100 % when pinning an alias URI), then
    waits for the new revision."""
    t = ModelTarget(**plan["target"])
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
    percent = 100 if plan.get("pin") else t.canary_percent
    s.isvcs.apply(t.name, plan["storageUri"], percent, _deployed(t, plan["version"], plan.get("previousStorageUri")))
    log.info(
        "%s: applied storageUri %s with canaryTrafficPercent %d (stable revision %s keeps %d %%)",
        t.name, plan["storageUri"], percent, stable, 100 - percent,
    )  # fmt: skip
    revision = _wait_ready(s, t.name, before.get("latestCreatedRevision"), t.ready_seconds, t.check_seconds)
    if revision is not None:
        log.info("%s: revision %s is ready and takes %d %% of requests", t.name, revision, percent)
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
    if rollout.get("pin"):
        ready = revision is not None
        return Verdict(ready, "pinned the alias's version: nothing to canary against" if ready else "not ready")
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


def conclude(rollout: Mapping[str, Any], verdict: Verdict, s: Services) -> dict[str, Any]:
    """Promotes a healthy canary to 100 %, otherwise rolls back to the stable revision; tags the MLflow
    version with the outcome and the reason either way. Every apply but the rollback's restore keeps the
    storageUri and the annotations of the roll-out, so it changes traffic only, never the revision."""
    t = ModelTarget(**rollout["target"])
    version, uri, revision = rollout["version"], rollout["storageUri"], rollout.get("canaryRevision")
    previous = rollout.get("previousStorageUri")
    deployed = _deployed(t, version, previous)
    if verdict.healthy:
        if not rollout.get("pin"):
            s.isvcs.apply(t.name, uri, 100, deployed)
        log.info("%s: promoted %s (version %s) to 100 %%: %s", t.name, revision, version, verdict.reason)
        outcome = PROMOTED
    elif rollout.get("pin"):
        # The spec is at 100 %: Knative keeps routing to the last ready revision until the new one is ready
        log.error("%s: the pinned revision of version %s is not ready: %s; the previous revision keeps serving",
                  t.name, version, verdict.reason)  # fmt: skip
        outcome = NOT_READY
    elif not previous:
        # nothing to go back to (an InferenceService without a storageUri): it stays, and the version is tagged
        log.error("%s: version %s is unhealthy and there is no previous model to go back to: %s",
                  t.name, version, verdict.reason)  # fmt: skip
        outcome = ROLLED_BACK
    else:
        # the restored spec names the version that served before (its annotation) and the URI it replaced
        restored = {
            MODEL_VERSION_ANNOTATION: rollout.get("previousVersion") or "",
            PREVIOUS_URI_ANNOTATION: uri,
        }
        created = _latest_created(s, t.name)
        s.isvcs.apply(t.name, previous, 0, restored)
        log.warning(
            "%s: rolled back: canaryTrafficPercent 0 sends every request to %s; storageUri restored to %s (%s)",
            t.name, rollout.get("stableRevision"), previous, verdict.reason,
        )  # fmt: skip
        back = _wait_ready(s, t.name, created, t.ready_seconds, t.check_seconds)
        if back is not None:
            s.isvcs.apply(t.name, previous, 100, restored)
            log.info("%s: the restored revision %s is ready and takes 100 %%", t.name, back)
        else:
            log.warning("%s: the restored revision is not ready; traffic stays pinned to %s at 0 %% canary",
                        t.name, rollout.get("stableRevision"))  # fmt: skip
        outcome = ROLLED_BACK
    tags = {STATUS_TAG: outcome, REASON_TAG: verdict.reason, REVISION_TAG: revision or ""}
    for key, value in tags.items():
        s.registry.set_tag(t.registered_model, version, key, value)
    log.info("%s: tagged %s version %s %s", t.name, t.registered_model, version, tags)
    return {"model": t.name, "version": version, "outcome": outcome, "reason": verdict.reason, "checks": verdict.checks}
