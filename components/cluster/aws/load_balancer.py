"""The AWS Load Balancer Controller: turns the Istio ingress gateway's Service into a Network Load Balancer
with IP targets (traffic goes straight to the gateway pods, no node hop), internal unless config says
internet-facing. Its IRSA role carries exactly the policy its documentation prescribes
(load_balancer_controller_policy.json: docs/install/iam_policy.json of kubernetes-sigs/
aws-load-balancer-controller at v3.5.0, commit 5982613953df58f3227301b7121abde6abaa2c20)."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cluster.aws.eks import ControlPlane
from components.cluster.aws.iam import irsa_role
from components.contracts import LoadBalancerProfile, NodePoolContract
from components.environment import ClusterArgs
from components.kube import pinned_release, zone_spread
from mlplatform.config import HaProfile
from mlplatform.pins import AWS_LOAD_BALANCER_CONTROLLER

POLICY_FILE = Path(__file__).with_name("load_balancer_controller_policy.json")
SERVICE_ACCOUNT = "aws-load-balancer-controller"
KUBE_SYSTEM = "kube-system"

# Service annotations the controller reads: an NLB ("external" = managed by this controller, not the
# in-tree provider) with IP targets and cross-zone balancing.
_NLB = {
    "service.beta.kubernetes.io/aws-load-balancer-type": "external",
    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
    "service.beta.kubernetes.io/aws-load-balancer-attributes": "load_balancing.cross_zone.enabled=true",
}


class LoadBalancerController(pulumi.ComponentResource):
    profile: LoadBalancerProfile

    def __init__(
        self,
        name: str,
        cfg: ClusterArgs,
        eks: ControlPlane,
        vpc_id: pulumi.Input[str],
        provider: k8s.Provider,
        system_pool: NodePoolContract,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlplatform:cluster:LoadBalancerController", name, None, opts)
        role = irsa_role(f"{name}-role", eks.oidc_provider, KUBE_SYSTEM, SERVICE_ACCOUNT, parent=self)
        policy = aws.iam.RolePolicy(
            f"{name}-policy", role=role.id, policy=POLICY_FILE.read_text(), opts=pulumi.ResourceOptions(parent=role)
        )
        replicas = 2 if cfg.ha is HaProfile.MULTI_ZONE else 1
        values = {
            "clusterName": eks.cluster.name,
            "region": cfg.region,
            "vpcId": vpc_id,
            "replicaCount": replicas,
            "serviceAccount": {
                "create": True,
                "name": SERVICE_ACCOUNT,
                "annotations": {"eks.amazonaws.com/role-arn": role.arn},
            },
            # only Services that ask for it (the annotations below) get an NLB; others keep their defaults
            "enableServiceMutatorWebhook": False,
            "podDisruptionBudget": {"maxUnavailable": 1} if replicas > 1 else {},
            # replicas over zones (the HA table); the chart's selector labels (templates/_helpers.tpl)
            "topologySpreadConstraints": zone_spread(
                {"app.kubernetes.io/name": "aws-load-balancer-controller", "app.kubernetes.io/instance": name}
            )
            if replicas > 1
            else [],
            # a reconcile loop over a handful of Services and TargetGroupBindings
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            "nodeSelector": system_pool.node_selector(),
            "tolerations": system_pool.tolerations(),
        }
        # helm.v3.Release: the chart ships its TargetGroupBinding CRDs in crds/, which Helm installs once and
        # never deletes (a v4 Chart would own them and delete every binding with the release)
        release = pinned_release(
            self,
            name,
            AWS_LOAD_BALANCER_CONTROLLER,
            KUBE_SYSTEM,
            values,
            provider,
            # on the system pool, which always has a node; its webhook must be serving before the gateway's
            # Service is created
            timeout_seconds=300,
            depends_on=[policy],
        )
        self.profile = LoadBalancerProfile(
            internal_annotations={**_NLB, "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"},
            external_annotations={**_NLB, "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing"},
            ready=(release,),
        )
        self.register_outputs({})
