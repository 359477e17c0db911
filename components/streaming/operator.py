"""The Apache Flink Kubernetes Operator (chart 1.15.0) in its own namespace, watching only `streaming`.

helm.v3.Release: the chart ships its CRDs in crds/ (FlinkDeployment, FlinkSessionJob, FlinkStateSnapshot,
FlinkBlueGreenDeployment), which Helm installs once and never deletes with the release.

What the program sets, and why (helm/flink-kubernetes-operator at tag release-1.15.0):
- image.tag: the chart's values.yaml reads `latest`; pinned to the appVersion.
- watchNamespaces [streaming]: the chart then makes the jobs' Role and RoleBinding in `streaming` only
  (templates/flink/role.yaml, role_binding.yaml) and the operator's own Role there (rbac/role.yaml).
- jobServiceAccount.create false, name = the streaming workload's service account: the program makes that
  account with its cloud identity (components/streaming/job.py); the chart's RoleBinding binds it.
- Pod Security restricted: podSecurityContext runs as the image's user 9999 (the chart's default) with a
  seccomp profile; both containers drop every capability (operatorSecurityContext, webhookSecurityContext).
- The webhook (validating and mutating FlinkDeployments) needs a cert-manager Certificate
  (templates/cert-manager/{issuer,certificate}.yaml): on exactly when cert-manager is installed (it is part
  of the serving stack). Its PKCS#12 keystore password is the program's own random Secret, not the chart's
  default `password1234` (templates/webhook/secret.yaml: useDefaultPassword).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.kube import RESTRICTED_CONTAINER, RESTRICTED_POD, opaque_secret, pinned_release
from components.placement import Placement
from components.secrets import generated_secret
from mlplatform.pins import FLINK_OPERATOR_IMAGE, ChartPin

OPERATOR_UID = 9999  # the chart's podSecurityContext default, the image's `flink` user
KEYSTORE_SECRET, KEYSTORE_KEY = "flink-operator-webhook-keystore", "password"


@dataclass(frozen=True)
class FlinkOperatorArgs:
    namespace: k8s.core.v1.Namespace
    watched: str  # the namespace whose FlinkDeployments the operator reconciles
    job_service_account: str
    pin: ChartPin
    placement: Placement
    provider: k8s.Provider
    cert_manager: pulumi.Resource | None  # the webhook is made only with cert-manager, after it answers


def operator_values(
    *, pin: ChartPin, watched: str, job_service_account: str, placement: Placement, webhook: bool
) -> dict[str, object]:
    container = {**RESTRICTED_CONTAINER, "runAsUser": OPERATOR_UID}
    return {
        "image": {"repository": FLINK_OPERATOR_IMAGE, "tag": pin.app_version},
        "watchNamespaces": [watched],
        "jobServiceAccount": {"create": False, "name": job_service_account},
        "podSecurityContext": {**RESTRICTED_POD, "runAsUser": OPERATOR_UID, "runAsGroup": OPERATOR_UID},
        "operatorSecurityContext": container,
        "webhookSecurityContext": container,
        "operatorPod": {
            "nodeSelector": placement.node_selector,
            "tolerations": placement.tolerations,
            "resources": placement.resources("100m", "512Mi", "1Gi", small=("50m", "384Mi")),
            "webhook": {"resources": placement.resources("50m", "256Mi", "512Mi", small=("10m", "128Mi"))},
        },
        "webhook": {
            "create": webhook,
            "keystore": {
                "useDefaultPassword": False,
                "passwordSecretRef": {"name": KEYSTORE_SECRET, "key": KEYSTORE_KEY},
            },
        },
    }


class FlinkOperator(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: FlinkOperatorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:streaming:FlinkOperator", name, None, opts)
        webhook = args.cert_manager is not None
        keystore = opaque_secret(
            self,
            f"{name}-webhook-keystore",
            KEYSTORE_SECRET,
            args.namespace,
            {KEYSTORE_KEY: generated_secret(self, f"{name}-webhook-keystore")},
        )
        self.release = pinned_release(
            self,
            name,
            args.pin,
            args.namespace.metadata.name,
            operator_values(
                pin=args.pin,
                watched=args.watched,
                job_service_account=args.job_service_account,
                placement=args.placement,
                webhook=webhook,
            ),
            args.provider,
            release_name="flink-kubernetes-operator",
            # one Deployment on the CPU pool, which may be at zero nodes (~3 min), plus the image pull
            timeout_seconds=600,
            depends_on=[keystore, *([args.cert_manager] if args.cert_manager is not None else [])],
        )
        self.register_outputs({})
