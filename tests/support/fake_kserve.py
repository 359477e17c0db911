"""A Kubernetes API for InferenceServices on a local port, for the deployment flow's tests: the real
`kubernetes` client talks HTTP to it, every request is recorded, and each write is followed by what KServe
v0.20.0 and Knative make of it, so the status the flow reads back is the one a cluster would show.

Modelled from upstream:
- server-side apply (Kubernetes "Server-Side Apply": an apply body states a manager's whole intent; fields it
  owned and no longer states are removed; a field another manager owns with another value is a 409 conflict
  unless `force=true`), per leaf field, with managedFields kept per manager;
- the Knative Service KServe writes (pkg/controller/v1beta1/inferenceservice/reconcilers/knative/
  ksvc_reconciler.go @v0.20.0): with canaryTrafficPercent P and a rolled-out revision, P % to the latest
  revision and 100-P % to latestRolledoutRevision (tag `prev`), else 100 % to the latest revision;
- Knative: a new revision `<isvc>-predictor-0000N` for every change of the predictor's template (not for a
  traffic change), ready at once unless its storageUri is in `never_ready`; `latestRevision` targets resolve
  to the latest ready revision. The template carries the InferenceService's annotations: KServe copies them
  into every component's revision template (pkg/controller/v1beta1/inferenceservice/components/predictor.go
  buildObjectMeta, minus pkg/constants ServiceAnnotationDisallowedList, KServe's own keys only);
- KServe's status propagation (pkg/apis/serving/v1beta1/inference_service_status.go PropagateStatus),
  including its observedGeneration: the generation of the last component's Knative Service (the
  transformer's where there is one, written after the predictor's), which a change of the predictor alone
  does not move.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

PREFIX = "/apis/serving.kserve.io/v1beta1/namespaces/"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any


def _leaves(doc: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(doc, dict) and doc:
        for k, v in doc.items():
            yield from _leaves(v, (*prefix, k))
    else:
        yield prefix, doc


def _get(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def _set(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc.setdefault(key, {})
    doc[path[-1]] = copy.deepcopy(value)


def _delete(doc: dict[str, Any], path: tuple[str, ...]) -> None:
    parents = [doc]
    for key in path[:-1]:
        doc = doc.get(key)
        if not isinstance(doc, dict):
            return
        parents.append(doc)
    doc.pop(path[-1], None)
    for key, parent in zip(reversed(path[:-1]), reversed(parents[:-1]), strict=True):
        if parent.get(key) == {}:
            del parent[key]


IDENTITY = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}
# kserve v0.20.0 pkg/constants/constants.go ServiceAnnotationDisallowedList: not copied to revision templates
DISALLOWED = {
    "autoscaling.knative.dev/min-scale",
    "autoscaling.knative.dev/max-scale",
    "internal.serving.kserve.io/storage-initializer-sourceuri",
    "kubectl.kubernetes.io/last-applied-configuration",
}


@dataclass
class FakeKServe:
    never_ready: set[str] = field(default_factory=set)  # storageUris whose revisions never become ready
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    owners: dict[tuple[str, str], dict[tuple[str, ...], str]] = field(default_factory=dict)  # leaf -> manager
    templates: dict[tuple[str, str], list[tuple[str, str]]] = field(default_factory=dict)  # (revision, template)
    # each component's Knative Service: (its spec as last written, its generation)
    ksvcs: dict[tuple[str, str, str], tuple[str, int]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- what the tests set up and read -------------------------------------------------------------------

    def seed(self, isvc: dict[str, Any], manager: str = "pulumi-kubernetes") -> None:
        """An InferenceService as the program (or a person) created it, reconciled: its first revision serves."""
        key = (isvc["metadata"]["namespace"], isvc["metadata"]["name"])
        self._create(key, isvc, manager)

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]

    def predictor(self, namespace: str, name: str) -> dict[str, Any]:
        return self.objects[(namespace, name)]["status"]["components"]["predictor"]

    # -- the API ---------------------------------------------------------------------------------------------

    def _create(self, key: tuple[str, str], body: dict[str, Any], manager: str) -> dict[str, Any]:
        obj = copy.deepcopy(body)
        obj["metadata"] |= {"generation": 1, "resourceVersion": "1", "uid": f"uid-{key[1]}"}
        self.objects[key] = obj
        self.owners[key] = {path: manager for path, _ in _leaves(body) if path not in IDENTITY}
        self.templates[key] = []
        self._reconcile(key)
        return obj

    def _apply(self, key: tuple[str, str], body: dict[str, Any], manager: str, force: bool) -> tuple[int, Any]:
        if key not in self.objects:
            return 201, self._create(key, body, manager)
        obj, owners = self.objects[key], self.owners[key]
        stated = {path: value for path, value in _leaves(body) if path not in IDENTITY}
        conflicts = [
            f"{'.'.join(p)} (owned by {owners[p]})"
            for p, v in stated.items()
            if owners.get(p, manager) != manager and _get(obj, p) != v
        ]
        if conflicts and not force:
            return 409, {"kind": "Status", "status": "Failure", "reason": "Conflict", "message": "; ".join(conflicts)}
        before = copy.deepcopy(obj.get("spec"))
        for path in [p for p, m in owners.items() if m == manager and p not in stated]:
            _delete(obj, path)
            del owners[path]
        for path, value in stated.items():
            _set(obj, path, value)
            owners[path] = manager
        if obj.get("spec") != before:
            obj["metadata"]["generation"] += 1
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
        self._reconcile(key)
        return 200, obj

    def _reconcile(self, key: tuple[str, str]) -> None:
        obj = self.objects[key]
        predictor = copy.deepcopy(obj["spec"]["predictor"])
        canary = predictor.pop("canaryTrafficPercent", None)
        annotations = {k: v for k, v in (obj["metadata"].get("annotations") or {}).items() if k not in DISALLOWED}
        template = json.dumps({"spec": predictor, "annotations": annotations}, sort_keys=True)
        revisions = self.templates[key]
        status = obj.setdefault("status", {})
        comp = status.setdefault("components", {}).setdefault("predictor", {})
        if not revisions or revisions[-1][1] != template:
            revisions.append((f"{key[1]}-predictor-{len(revisions) + 1:05d}", template))
        created = revisions[-1][0]
        ready_revisions = [
            r for r, t in revisions if json.loads(t)["spec"].get("model", {}).get("storageUri") not in self.never_ready
        ]
        ready = ready_revisions[-1] if ready_revisions else None
        # ksvc_reconciler.go: the Knative Service's traffic
        rolled_out = comp.get("latestRolledoutRevision", "")
        if canary is not None and rolled_out:
            targets = [{"latestRevision": True, "percent": canary}]
            if canary < 100:
                targets.append({"revisionName": rolled_out, "latestRevision": False, "percent": 100 - canary})
        else:
            targets = [{"latestRevision": True, "percent": 100}]
        # Knative: latestRevision targets route to the latest ready revision
        traffic = [t | {"revisionName": ready} if t.get("latestRevision") else t for t in targets]
        # inference_service_status.go PropagateStatus
        by_revision: dict[str, int] = {}
        for t in traffic:
            by_revision[t["revisionName"]] = by_revision.get(t["revisionName"], 0) + t["percent"]
        for t in traffic:
            if t["revisionName"] == ready and t.get("latestRevision"):
                if comp.get("latestRolledoutRevision", "") != ready:
                    if t["percent"] == 100:
                        comp["previousRolledoutRevision"] = comp.get("latestRolledoutRevision", "")
                        comp["latestRolledoutRevision"] = ready
                elif (
                    ready == created
                    and t["percent"] < 100
                    and by_revision.get(t["revisionName"]) == 100
                    and comp.get("previousRolledoutRevision")
                ):
                    comp["latestRolledoutRevision"] = comp["previousRolledoutRevision"]
        comp |= {"latestCreatedRevision": created, "latestReadyRevision": ready, "traffic": traffic}
        # each component's Knative Service moves its generation when its spec (template, traffic) changes
        specs = {"predictor": json.dumps([template, targets], sort_keys=True)}
        if "transformer" in obj["spec"]:
            specs["transformer"] = json.dumps([obj["spec"]["transformer"], annotations], sort_keys=True)
        for component, spec in specs.items():
            last, generation = self.ksvcs.get((*key, component), (None, 0))
            self.ksvcs[(*key, component)] = (spec, generation + (spec != last))
        status["observedGeneration"] = self.ksvcs[(*key, list(specs)[-1])][1]
        status["conditions"] = [{"type": "Ready", "status": "True" if ready == created else "False"}]

    def handle(self, method: str, url: str, content_type: str, raw: bytes) -> tuple[int, Any]:
        parsed = urlparse(url)
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        body = json.loads(raw) if raw else None
        with self.lock:
            self.requests.append(Recorded(method, parsed.path, query, content_type, copy.deepcopy(body)))
            if not parsed.path.startswith(PREFIX):
                return 404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}
            parts = parsed.path.removeprefix(PREFIX).split("/")
            namespace, name = parts[0], parts[2] if len(parts) > 2 else None
            if method == "GET" and name is not None:
                found = self.objects.get((namespace, name))
                if found is None:
                    return 404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}
                return 200, found
            if method == "POST" and name is None:
                key = (namespace, body["metadata"]["name"])
                if key in self.objects:
                    return 409, {"kind": "Status", "status": "Failure", "reason": "AlreadyExists", "code": 409}
                return 201, self._create(key, body, query.get("fieldManager", "unknown"))
            if method == "PATCH" and name is not None and content_type == "application/apply-patch+yaml":
                if "fieldManager" not in query:
                    return 422, {"kind": "Status", "status": "Failure", "message": "fieldManager is required"}
                return self._apply((namespace, name), body, query["fieldManager"], query.get("force") == "true")
            return 415, {"kind": "Status", "status": "Failure", "message": f"not modelled: {method} {content_type}"}

    @contextmanager
    def serve(self) -> Iterator[str]:
        """The API on a free local port while the block runs; yields its URL."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                code, doc = fake.handle(
                    self.command, self.path, self.headers.get("Content-Type", ""), self.rfile.read(length)
                )
                data = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _any

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
