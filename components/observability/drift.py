"""Drift monitoring (the design's "Airflow -> Evidently -> Alerting"): a CronJob compares the recent
inference sample with the reference sample using Evidently and pushes the scores to a Prometheus
Pushgateway (chart 3.8.0), which Prometheus scrapes with honor_labels; the DriftShareHigh and DriftStale
alerts read them.

A CronJob in `monitoring`, not an Airflow DAG: Evidently's dependencies (pandas 3.0, its own scipy and
scikit-learn pins) are not Airflow's, the job runs as its own identity with read access to the datasets
bucket only, and drift alerts keep working while Airflow itself is down. The job's code is in
jobs/drift/ (tested against a real Pushgateway) and reaches the pods as a ConfigMap:
- init container `fetch` (the Airflow image, which has boto3 and google-cloud-storage) copies both samples
  from the bucket into a scratch volume;
- container `drift` (evidently/evidently-service, Evidently with pandas, no S3/GCS client) computes and pushes.

The Evidently UI is not installed: its image has no S3/GCS support (Evidently's own tutorial builds an image
on top with s3fs and gcsfs), which a platform cannot pull from a public registry as is.

helm.v4.Chart for the Pushgateway: one Deployment and Service, no hooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import Bucket, Namespace, WorkloadIdentity
from components.guardrails import PUSHGATEWAY_PODS, PUSHGATEWAY_PORT
from components.kube import (
    PART_OF,
    RESTRICTED_CONTAINER,
    RESTRICTED_POD,
    identity_service_account,
    periodic_job_spec,
    pinned_chart,
)
from components.placement import Placement
from mlplatform.config import AlertThresholds, EvidentlyConfig
from mlplatform.pins import AIRFLOW_IMAGE, AIRFLOW_IMAGE_UID, EVIDENTLY_IMAGE, ChartPin

JOB_DIR = Path(__file__).resolve().parents[2] / "jobs" / "drift"
SCRIPTS = ("fetch_inputs.py", "compute_drift.py")
CODE_MOUNT, DATA_MOUNT = "/opt/drift", "/data"
RELEASE = PUSHGATEWAY_PODS["app.kubernetes.io/instance"]
PUSHGATEWAY_URL = f"http://{RELEASE}.{Namespace.MONITORING.value}.svc:{PUSHGATEWAY_PORT}"
NOBODY = 65534  # the Evidently image runs as root by default; the job needs no privileges


@dataclass(frozen=True)
class DriftMonitorArgs:
    namespace: k8s.core.v1.Namespace  # monitoring
    identity: WorkloadIdentity  # read on the datasets bucket
    bucket: Bucket  # datasets
    config: EvidentlyConfig
    thresholds: AlertThresholds
    pushgateway: ChartPin
    placement: Placement
    provider: k8s.Provider


@dataclass(frozen=True)
class DriftMonitorOutputs:
    pushgateway_url: str


def pushgateway_values(placement: Placement) -> dict[str, object]:
    return {
        "nodeSelector": placement.node_selector,
        "tolerations": placement.tolerations,
        "resources": placement.resources("10m", "32Mi", "128Mi"),
        # the chart sets the pod's runAsNonRoot/runAsUser; the container gets the rest of `restricted`
        "containerSecurityContext": RESTRICTED_CONTAINER,
        "securityContext": {**RESTRICTED_POD, "fsGroup": NOBODY, "runAsUser": NOBODY},
    }


def _suffix(key: str) -> str:
    return key[key.rindex(".") :]


def _fetch_env(bucket: Bucket) -> list[dict[str, object]]:
    # the S3 client signs for the bucket's region; regional STS for the web identity exchange
    return [{"name": "AWS_REGION", "value": bucket.region}, {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"}]


def with_identity(env: list[dict[str, object]], identity_env: list[dict[str, object]]) -> list[dict[str, object]]:
    """`env` and the identity's variables (the local store's key and endpoint: boto3.client("s3") reads them),
    the identity's winning where both name one (AWS_REGION); `env` as it is on AWS and GCP."""
    names = {e["name"] for e in identity_env}
    return [e for e in env if e["name"] not in names] + identity_env


def job_pod(args: DriftMonitorArgs, account: pulumi.Input[str], code: pulumi.Input[str]) -> dict[str, object]:
    drift, placement = args.config.drift, args.placement
    reference, current = f"reference{_suffix(drift.reference)}", f"current{_suffix(drift.current)}"
    mounts = [{"name": "code", "mountPath": CODE_MOUNT, "readOnly": True}, {"name": "data", "mountPath": DATA_MOUNT}]
    fetch = {
        "name": "fetch",
        "image": AIRFLOW_IMAGE,
        "command": ["python", f"{CODE_MOUNT}/fetch_inputs.py"],
        "args": [
            "--store",
            args.bucket.store.value,
            "--bucket",
            args.bucket.name,
            "--into",
            DATA_MOUNT,
            f"{reference}={drift.reference}",
            f"{current}={drift.current}",
        ],
        "env": with_identity(_fetch_env(args.bucket), args.identity.env),
        "securityContext": {**RESTRICTED_CONTAINER, "runAsUser": AIRFLOW_IMAGE_UID},
        "resources": placement.resources("100m", "256Mi", "1Gi"),
        "volumeMounts": mounts,
    }
    compute = {
        "name": "drift",
        "image": f"docker.io/{EVIDENTLY_IMAGE}:{args.config.version}",
        "command": ["python", f"{CODE_MOUNT}/compute_drift.py"],
        "args": [
            "--reference",
            f"{DATA_MOUNT}/{reference}",
            "--current",
            f"{DATA_MOUNT}/{current}",
            "--dataset",
            drift.dataset,
            "--pushgateway",
            PUSHGATEWAY_URL,
            "--drift-share",
            str(args.thresholds.drift_share),
            "--columns",
            ",".join(drift.columns),
        ],
        # Evidently's usage telemetry off; a writable home for its caches
        "env": [{"name": "DO_NOT_TRACK", "value": "1"}, {"name": "HOME", "value": "/tmp"}],
        "securityContext": {**RESTRICTED_CONTAINER, "runAsUser": NOBODY},
        "resources": placement.resources("250m", "1Gi", "4Gi"),
        "volumeMounts": mounts,
    }
    return {
        "serviceAccountName": account,
        "restartPolicy": "Never",
        "securityContext": {**RESTRICTED_POD, "fsGroup": NOBODY},
        "nodeSelector": placement.node_selector,
        "tolerations": placement.tolerations,
        "initContainers": [fetch],
        "containers": [compute],
        "volumes": [
            {"name": "code", "configMap": {"name": code}},
            {"name": "data", "emptyDir": {"sizeLimit": "2Gi"}},
        ],
    }


class DriftMonitor(pulumi.ComponentResource):
    outputs: DriftMonitorOutputs

    def __init__(self, name: str, args: DriftMonitorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:observability:DriftMonitor", name, None, opts)
        ns = args.namespace.metadata.name
        pushgateway = pinned_chart(
            self,
            f"{name}-pushgateway",
            args.pushgateway,
            ns,
            pushgateway_values(args.placement),
            args.provider,
            release_name=RELEASE,
        )
        account = identity_service_account(self, f"{name}-service-account", args.identity, args.namespace)
        code = k8s.core.v1.ConfigMap(
            f"{name}-code",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="drift-job", namespace=ns, labels=PART_OF),
            data={script: (JOB_DIR / script).read_text() for script in SCRIPTS},
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s.batch.v1.CronJob(
            f"{name}-job",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="drift", namespace=ns, labels=PART_OF),
            spec=periodic_job_spec(
                args.config.drift.schedule,
                "drift",
                job_pod(args, account.metadata.name, code.metadata.name),
                deadline_seconds=1800,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[pushgateway]),
        )
        self.outputs = DriftMonitorOutputs(PUSHGATEWAY_URL)
        self.register_outputs({"pushgatewayUrl": PUSHGATEWAY_URL})
