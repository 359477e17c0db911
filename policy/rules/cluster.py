"""The Kubernetes cluster itself (components/cluster: aws/ EKS, gcp/ GKE)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from policy.rules import resource_rule, stack_rule
from policy.rules.storage import as_list
from policy.view import Context, Resource, Stack

EKS = "aws:eks/cluster:Cluster"
EKS_ADDON = "aws:eks/addon:Addon"
GKE = "gcp:container/cluster:Cluster"
GKE_POOL = "gcp:container/nodePool:NodePool"
OPEN = frozenset({"0.0.0.0/0", "::/0"})


@resource_rule("cluster-api-not-open", "The prod cluster API is not open to the whole internet", EKS, GKE)
def cluster_api_not_open(res: Resource, ctx: Context) -> Iterable[str]:
    """The API server is the cluster's front door. EKS: a public endpoint with `publicAccessCidrs` unset is
    open to 0.0.0.0/0 (EKS User Guide, "Cluster API server endpoint"); GKE: a public IP endpoint is open to
    every address unless master authorized networks narrow it (GKE docs, "Access to cluster control
    plane"). Dev may be open (README: `publicAccessCidrs`)."""
    if not ctx.prod:
        return
    if res.type == EKS:
        vpc = res.get("vpcConfig") or {}
        if vpc.get("endpointPublicAccess", True) is not False:
            cidrs = set(as_list(vpc.get("publicAccessCidrs"))) or {"0.0.0.0/0"}
            if cidrs & OPEN:
                yield f"public endpoint open to {sorted(cidrs & OPEN)}"
    else:
        private = res.get("privateClusterConfig.enablePrivateEndpoint") is True
        blocks = {(b or {}).get("cidrBlock") for b in res.get("masterAuthorizedNetworksConfig.cidrBlocks") or []}
        if blocks & OPEN:
            yield f"master authorized networks include {sorted(blocks & OPEN)}"
        elif not private and res.get("masterAuthorizedNetworksConfig") is None:
            yield "public IP endpoint with no master authorized networks"


@resource_rule("cluster-api-reachable", "The deploying runner can reach the cluster API", EKS, GKE, mandatory=False)
def cluster_api_reachable(res: Resource, ctx: Context) -> Iterable[str]:
    """`pulumi up` installs every in-cluster layer through the API (README, "Deploying for real"). With no
    public path the runner has to sit in the VPC (EKS `endpointPublicAccess: false`; GKE private endpoint
    with no DNS endpoint and no authorized networks): advisory, since that is a valid setup the plan cannot
    see."""
    if res.type == EKS:
        vpc = res.get("vpcConfig") or {}
        if vpc.get("endpointPublicAccess", True) is False or vpc.get("publicAccessCidrs") == []:
            yield "no public API endpoint: run `pulumi up` from inside the VPC"
    else:
        dns = res.get("controlPlaneEndpointsConfig.dnsEndpointConfig.allowExternalTraffic") is True
        private = res.get("privateClusterConfig.enablePrivateEndpoint") is True
        if private and not dns:
            yield "private IP endpoint and no DNS endpoint: run `pulumi up` from inside the VPC"


@resource_rule("cluster-secrets-encryption", "EKS envelope-encrypts Secrets with a KMS key", EKS)
def cluster_secrets_encryption(res: Resource, ctx: Context) -> Iterable[str]:
    """Secrets hold every database and Redis password; envelope encryption with the platform's KMS key
    keeps them unreadable in etcd backups (EKS User Guide, "Encrypt Kubernetes secrets with KMS on existing
    clusters": `encryptionConfig.resources: [secrets]`)."""
    enc = [e or {} for e in as_list(res.get("encryptionConfig"))]
    if not any("secrets" in as_list(e.get("resources")) and (e.get("provider") or {}).get("keyArn") for e in enc):
        yield "no encryptionConfig for secrets with a KMS key"


@resource_rule(
    "gke-secrets-encryption",
    "GKE encrypts Secrets at the application layer with Cloud KMS",
    GKE,
    mandatory=False,
)
def gke_secrets_encryption(res: Resource, ctx: Context) -> Iterable[str]:
    """GKE encrypts etcd at rest with Google-managed keys by default; application-layer secrets encryption
    (`databaseEncryption.state: ENCRYPTED` with a Cloud KMS key, GKE docs "Encrypt secrets at the
    application layer") adds the envelope the EKS stacks have. Advisory: the GKE adapter does not
    configure it yet (it needs a key ring and a grant to the GKE service agent)."""
    if res.get("databaseEncryption.state") != "ENCRYPTED" or not res.get("databaseEncryption.keyName"):
        yield "databaseEncryption is not ENCRYPTED with a Cloud KMS key (Google-managed keys only)"


@stack_rule("network-policy-enforced", "NetworkPolicies are enforced by the cluster's network plugin")
def network_policy_enforced(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """The platform's isolation is NetworkPolicy (components/guardrails.py: default deny plus named flows),
    which does nothing unless the CNI enforces it: EKS's VPC CNI add-on with `enableNetworkPolicy: "true"`
    (EKS User Guide, "Limit pod traffic with Kubernetes network policies"), GKE Dataplane V2
    (`datapathProvider: ADVANCED_DATAPATH`, GKE docs "About Dataplane V2") or GKE network policy
    enforcement (`networkPolicy.enabled`)."""
    for cluster in stack.of_type(EKS):
        addons = [a for a in stack.of_type(EKS_ADDON) if a.get("addonName") == "vpc-cni"]
        values = [_json(a.get("configurationValues")) for a in addons]
        if not any(str(v.get("enableNetworkPolicy")).lower() == "true" for v in values):
            yield cluster, 'no vpc-cni add-on with configurationValues enableNetworkPolicy "true"'
    for cluster in stack.of_type(GKE):
        if cluster.get("datapathProvider") != "ADVANCED_DATAPATH" and cluster.get("networkPolicy.enabled") is not True:
            yield cluster, "neither Dataplane V2 (ADVANCED_DATAPATH) nor networkPolicy.enabled"


def _json(text: object) -> dict[str, object]:
    try:
        value = json.loads(str(text)) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@resource_rule("gke-node-service-account", "GKE nodes do not run as the default compute service account", GKE, GKE_POOL)
def gke_node_service_account(res: Resource, ctx: Context) -> Iterable[str]:
    """The Compute Engine default service account has the project Editor role, so every pod that reaches
    the metadata server would too (GKE docs, "Harden your cluster's security": use a least-privilege
    service account for nodes)."""
    if res.type == GKE and res.get("removeDefaultNodePool") is True and not res.get("nodeConfig"):
        return
    account = res.get("nodeConfig.serviceAccount")
    if not account or account == "default" or str(account).endswith("-compute@developer.gserviceaccount.com"):
        yield f"nodeConfig.serviceAccount is {account or 'unset (the default compute service account)'}"
