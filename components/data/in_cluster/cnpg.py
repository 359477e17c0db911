"""What the program asks of CloudNativePG, as plain data: the operator chart's values and the Cluster's spec.

Kept apart from the component (postgres.py) so tests read them as the API server and Helm receive them.

The operator (chart cloudnative-pg 0.29.0, operator 1.30.0, cloudnative-pg/charts tag cloudnative-pg-v0.29.0)
runs in `data` and watches only `data` (config.clusterWide false: the chart sets WATCH_NAMESPACE to the
release namespace and grants the operator's rules through a namespaced Role, keeping in its ClusterRole only
nodes (read), its two webhook configurations (get, patch: it injects their CA) and ClusterImageCatalogs
(read); templates/rbac.yaml, _helpers.tpl cloudnative-pg.clusterwideRules). Its pod is restricted as the
chart ships it: podSecurityContext runAsNonRoot with a RuntimeDefault seccomp profile, the container runs as
10001 with no privilege escalation, every capability dropped and a read-only root (values.yaml).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.contracts import NodePoolContract
from components.guardrails import CNPG_CLUSTER, CNPG_CLUSTER_PODS
from components.kube import HOST_KEY, zone_spread
from mlplatform.config.models import PostgresConfig
from mlplatform.pins import CNPG_POSTGRES_IMAGE, CNPG_POSTGRES_TAGS

OPERATOR_RELEASE = "cloudnative-pg"
CLUSTER_NAME = CNPG_CLUSTER
SERVER_TLS_SECRET = f"{CLUSTER_NAME}-server-tls"
ADMIN_SECRET = f"{CLUSTER_NAME}-platform-admin"
CLUSTER_DOMAIN = "cluster.local"  # the kubelet's default --cluster-domain (EKS, GKE and kind all keep it)
# the Services the operator makes for a Cluster (cloudnative-pg v1.30.0 pkg/specs/services.go): -rw the
# primary, -ro the replicas, -r any instance
SERVICES = ("rw", "ro", "r")
# libpq's verify-full compares the host name the client connected to with the certificate's names, and
# clients name the Service however their DNS search path allows: every spelling of every Service
DNS_SUFFIXES = ("", ".{ns}", ".{ns}.svc", ".{ns}.svc." + CLUSTER_DOMAIN)


def server_dns_names(namespace: str) -> list[str]:
    """The server certificate's names: the primary's fully qualified Service name first (its common name, and
    the host clients are given), then every other spelling of the three Services."""
    names = [f"{CLUSTER_NAME}-{svc}{suffix.format(ns=namespace)}" for svc in SERVICES for suffix in DNS_SUFFIXES]
    primary = service_host("rw", namespace)
    return [primary, *(n for n in names if n != primary)]


def service_host(service: str, namespace: str) -> str:
    return f"{CLUSTER_NAME}-{service}.{namespace}.svc.{CLUSTER_DOMAIN}"


def operator_values(pool: NodePoolContract) -> dict[str, Any]:
    """The chart's values (its keys: mlplatform/chart_keys/cloudnative-pg-0.29.0.json). The image, CRDs,
    webhooks (port 9443) and security contexts stay the chart's defaults."""
    return {
        "config": {"clusterWide": False},
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "nodeSelector": pool.node_selector(),
        "tolerations": pool.tolerations(),
    }


def _cpu(cores: float) -> str:
    return f"{round(cores * 1000)}m"


def _memory(gib: float) -> str:
    return f"{round(gib * 1024)}Mi"


def image(version: str) -> str:
    """The operand image for the configured major (config allows 15 to 18, each pinned)."""
    return f"{CNPG_POSTGRES_IMAGE}:{CNPG_POSTGRES_TAGS[version]}"


def cluster_spec(pg: PostgresConfig, *, pool: NodePoolContract, storage_class: str, admin_user: str) -> dict[str, Any]:
    """The Cluster's spec (postgresql.cnpg.io/v1, CRD of chart 0.29.0).

    - TLS: the platform CA's server certificate (serverTLSSecret, kubernetes.io/tls) and that CA (the same
      Secret's ca.crt as serverCASecret; no ca.key needed once the server certificate is given:
      docs/src/certificates.md "User-provided certificates mode"). Client CA and the streaming_replica
      certificate stay operator-made. Every connection but the instance manager's local one must use TLS:
      `hostnossl ... reject` precedes the operator's default `host all all all scram-sha-256` (user rules come
      after the fixed rules, before the default: pkg/postgres/configuration.go hbaTemplateString).
    - No network superuser (enableSuperuserAccess false, the default since 1.21, stated): the admin the
      bootstrap Job uses is a managed role with CREATEROLE and CREATEDB, not SUPERUSER, as on RDS and Cloud SQL.
    - Placement: the pool's selector and tolerations; with more than one instance the operator's pod
      anti-affinity (preferred, per node) and a soft spread over zones, so a primary and its replicas do not
      share a node or, where there are several, a zone.
    """
    if pg.in_cluster is None:
        raise ValueError("in-cluster PostgreSQL needs data.postgres.inCluster")
    size = pg.in_cluster
    affinity: dict[str, Any] = {
        "nodeSelector": pool.node_selector(),
        "enablePodAntiAffinity": True,
        "podAntiAffinityType": "preferred",
        "topologyKey": HOST_KEY,
    }
    if pool.tolerations():
        affinity["tolerations"] = pool.tolerations()
    spec: dict[str, Any] = {
        "instances": pg.instances,
        "imageName": image(pg.version),
        "enableSuperuserAccess": False,
        "storage": {"size": f"{pg.storage_gb}Gi", "storageClass": storage_class},
        "resources": {
            "requests": {"cpu": _cpu(size.cpu), "memory": _memory(size.memory_gb)},
            "limits": {"memory": _memory(size.memory_gb)},
        },
        "affinity": affinity,
        "certificates": {"serverTLSSecret": SERVER_TLS_SECRET, "serverCASecret": SERVER_TLS_SECRET},
        "postgresql": {
            "parameters": {"log_min_duration_statement": "1000"},
            "pg_hba": ["hostnossl all all all reject"],
        },
        "managed": {
            "roles": [
                {
                    "name": admin_user,
                    "ensure": "present",
                    "login": True,
                    "createdb": True,
                    "createrole": True,
                    "superuser": False,
                    "passwordSecret": {"name": ADMIN_SECRET},
                    "comment": "the platform's bootstrap Job: creates each service's role and database",
                }
            ]
        },
        # a single instance has no replica to fail over to: a budget would only block node drains
        "enablePDB": pg.instances > 1,
    }
    if pg.instances > 1:
        spec["topologySpreadConstraints"] = zone_spread(CNPG_CLUSTER_PODS)[:1]
    return spec


def cluster_metadata_annotations(timeout_seconds: int) -> Mapping[str, str]:
    """Pulumi waits for the Cluster's Ready condition, which the operator sets True exactly when the Cluster's
    phase is "Cluster in healthy state" (cloudnative-pg v1.30.0 pkg/resources/status/transactions.go
    SetClusterReadyCondition): pulumi-kubernetes' `pulumi.com/waitFor` on a custom resource, which it
    otherwise only creates, as the Knative layer waits for KnativeServing (components/serving/knative.py)."""
    return {"pulumi.com/waitFor": "condition=Ready", "pulumi.com/timeoutSeconds": str(timeout_seconds)}
