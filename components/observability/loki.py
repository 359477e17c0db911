"""Loki 3.7 (grafana-community chart 18.11.0) in monolithic mode: every replica runs all of Loki's modules,
chunks and TSDB index go to the logs bucket as the Loki workload identity (IRSA / Workload Identity, no
keys), and the compactor deletes logs after the platform's log retention.

helm.v3.Release, not helm.v4.Chart: the chart resizes its StatefulSet's volumes with a `lookup` of the live
StatefulSet and a pre-upgrade hook Job (templates/_workload.tpl), both of which need a real Helm release.

Loki's ruler stays off: the platform alerts from Prometheus (components/observability/alerts.py), so no
rule sidecar watches ConfigMaps and no ruler bucket is needed. The chart's nginx gateway, canary and
memcached caches are off too: Grafana and Alloy talk to Loki's own Service, and monolithic Loki at the
platform's volume (a few GB a day) does not need the caches (each defaults to an 8 GiB memcached).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import AccessKey, Bucket, Namespace, ObjectStore, WorkloadIdentity
from components.guardrails import LOKI_HTTP_PORT, LOKI_PODS
from components.kube import identity_service_account, pinned_release, zone_spread
from components.placement import Placement
from mlplatform.config import LokiConfig
from mlplatform.pins import ChartPin

RELEASE = "loki"
# TSDB index with schema v13 is what Loki 3 requires for structured metadata and the compactor's retention
SCHEMA_START = "2026-01-01"


@dataclass(frozen=True)
class LokiArgs:
    namespace: k8s.core.v1.Namespace
    identity: WorkloadIdentity
    bucket: Bucket
    pin: ChartPin
    config: LokiConfig
    retention_days: int  # storage.logRetentionDays: one retention for every log the platform keeps
    storage_class: str
    placement: Placement
    provider: k8s.Provider


@dataclass(frozen=True)
class LokiOutputs:
    service_account: k8s.core.v1.ServiceAccount
    url: str  # Loki's HTTP API inside the cluster (Grafana's data source)
    push_url: str  # where log agents push


def _storage(bucket: Bucket, key: AccessKey | None = None) -> dict[str, object]:
    store = bucket.store.value
    backend: dict[str, object] = {"s3": {"region": bucket.region}} if bucket.store is ObjectStore.S3 else {}
    if key is not None and bucket.endpoint is not None:
        backend = {"s3": {"region": bucket.region, **s3_endpoint(bucket.endpoint, key)}}
    return {"type": store, "bucketNames": {"chunks": bucket.name, "ruler": bucket.name}, **backend}


# Loki expands ${VAR} in its configuration from the environment with -config.expand-env=true (Loki's
# "Configuration" docs, "Use environment variables in the configuration"): the key stays in its Secret
EXPAND_ENV = "-config.expand-env=true"


def s3_endpoint(endpoint: str, key: AccessKey) -> dict[str, object]:
    """The chart's loki.storage.s3 keys for an S3-compatible store (grafana-community loki 18.11.0
    templates/_helpers.tpl loki.lokiStorageConfig.s3): the endpoint as host:port, plain HTTP where the URL says
    so (`insecure`: the SDK's DisableSSL), path-style requests (the store serves no per-bucket host names), and
    the key from the environment."""
    scheme, _, authority = endpoint.partition("://")
    return {
        "endpoint": authority,
        "insecure": scheme == "http",
        "s3ForcePathStyle": True,
        "accessKeyId": f"${{{key.ACCESS_KEY_ID}}}",
        "secretAccessKey": f"${{{key.SECRET_ACCESS_KEY}}}",
    }


def evictable(replication_factor: int) -> int:
    """How many Loki pods a drain may evict at once. Each stream is written to `replication_factor`
    ingesters and a push needs a quorum of them, replication_factor/2 + 1 (grafana/dskit
    ring/replication_strategy.go, `minSuccess`), so (rf - 1) // 2 may go. At least one: with rf 2 a budget
    of 0 would block every node drain, which is worse than a moment without write quorum."""
    return max(1, (replication_factor - 1) // 2)


def loki_values(args: LokiArgs, service_account: pulumi.Input[str]) -> dict[str, object]:
    cfg, placement = args.config, args.placement
    replicas = cfg.replicas
    factor = min(replicas, 3)
    store = args.bucket.store.value
    return {
        "deploymentMode": "Monolithic",
        "loki": {
            # one tenant: the platform's own cluster
            "auth_enabled": False,
            "commonConfig": {"replication_factor": factor},
            "storage": _storage(args.bucket, args.identity.access_key),
            "schemaConfig": {
                "configs": [
                    {
                        "from": SCHEMA_START,
                        "store": "tsdb",
                        "object_store": store,
                        "schema": "v13",
                        "index": {"prefix": "loki_index_", "period": "24h"},
                    }
                ]
            },
            "compactor": {"retention_enabled": True, "delete_request_store": store},
            "limits_config": {"retention_period": f"{args.retention_days * 24}h"},
            "analytics": {"reporting_enabled": False},
        },
        # the service account bound to the Loki identity (made here, beside the identity's bucket grant)
        "serviceAccount": {"create": False, "name": service_account},
        "singleBinary": {
            "replicas": replicas,
            "nodeSelector": placement.node_selector,
            "tolerations": placement.tolerations,
            "resources": placement.resources("250m", "1Gi", "2Gi", small=("50m", "192Mi")),
            # the chart's default is a required anti-affinity per host; prefer zones too in multi-zone stacks
            "topologySpreadConstraints": zone_spread(LOKI_PODS) if placement.spread else [],
            # write-ahead log and compactor working files; chunks live in the bucket
            "persistence": {"size": f"{cfg.storage_gb}Gi", "storageClass": args.storage_class},
            "sidecar": False,
            # the chart renders the budget only when replicas > 1 and a bound is set (both are null by
            # default: templates/_pdb.tpl, monolithic/pdb.yaml)
            "podDisruptionBudget": {"maxUnavailable": evictable(factor)},
            # the local store's key (WorkloadIdentity.env), which the storage config names as ${VARS}
            **(
                {"extraArgs": [EXPAND_ENV], "extraEnv": args.identity.env}
                if args.identity.access_key is not None
                else {}
            ),
        },
        # the chart's defaults are for SimpleScalable (3 each); templates/validate.yaml refuses a monolithic
        # release while any of them has replicas
        **{target: {"replicas": 0} for target in ("backend", "read", "write")},
        "ruler": {"enabled": False},
        "gateway": {"enabled": False},
        "lokiCanary": {"enabled": False},
        "test": {"enabled": False},
        "chunksCache": {"enabled": False},
        "resultsCache": {"enabled": False},
        "memcached": {"enabled": False},
        # the rules sidecar's ClusterRole would read every ConfigMap and Secret in the cluster
        "sidecar": {"rules": {"enabled": False}},
        "minio": {"enabled": False},
    }


class Loki(pulumi.ComponentResource):
    outputs: LokiOutputs

    def __init__(self, name: str, args: LokiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:observability:Loki", name, None, opts)
        account = identity_service_account(self, f"{name}-service-account", args.identity, args.namespace)
        pinned_release(
            self,
            name,
            args.pin,
            args.namespace.metadata.name,
            loki_values(args, account.metadata.name),
            args.provider,
            release_name=RELEASE,
            # a StatefulSet whose volumes bind on a CPU pool node that may not exist yet
            timeout_seconds=600,
            depends_on=[account],
        )
        base = f"http://{RELEASE}.{Namespace.MONITORING.value}.svc.cluster.local:{LOKI_HTTP_PORT}"
        self.outputs = LokiOutputs(account, url=base, push_url=f"{base}/loki/api/v1/push")
        self.register_outputs({"serviceAccount": account.metadata.name, "url": base})
