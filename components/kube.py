"""Kubernetes building blocks shared by the in-cluster components: identity-bound service accounts,
Secrets fed from typed credentials, pinned charts and placement helpers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.contracts import AccessKey, PostgresEndpoint, WorkloadIdentity
from components.guardrails import NAME_LABEL
from mlplatform.pins import ChartPin

PART_OF = {"app.kubernetes.io/part-of": "mlplatform", "app.kubernetes.io/managed-by": "pulumi"}


def identity_service_account(
    parent: pulumi.Resource, resource_name: str, identity: WorkloadIdentity, ns: k8s.core.v1.Namespace
) -> k8s.core.v1.ServiceAccount:
    """The service account named by the identity's spec, annotated with its cloud principal. Where the cloud
    injects no credentials (local), the identity's access key goes into the Secret its `env` reads, in the same
    namespace, made here so that every workload that has the service account also has the key."""
    spec = identity.spec
    key = identity.access_key
    if key is not None:
        access_key_secret(parent, f"{resource_name}-access-key", key, ns)
    return k8s.core.v1.ServiceAccount(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=spec.service_account,
            namespace=ns.metadata.name,
            labels=PART_OF,
            annotations=identity.service_account_annotations,
        ),
        # KServe's storage-initializer finds S3 credentials in the Secrets its service account lists
        # (kserve v0.20.0 pkg/credentials/service_account_credentials.go, CreateSecretVolumeAndEnvFromServiceAccount)
        secrets=[k8s.core.v1.ObjectReferenceArgs(name=key.secret_name)] if key is not None else None,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def access_key_values(key: AccessKey | None) -> dict[str, str]:
    """The key's plain (non-secret) variables as name: value, for charts that take env only that way (the keys
    themselves then come from the Secret by envFrom); nothing without a key (AWS, GCP)."""
    return {} if key is None else {str(e["name"]): str(e["value"]) for e in key.env() if "value" in e}


# KServe's keys for the pair (kserve v0.20.0 pkg/credentials/s3/s3_secret.go AWSAccessKeyIdName,
# AWSSecretAccessKeyName) and its annotations for the endpoint and region (InferenceServiceS3SecretEndpointAnnotation,
# ...RegionAnnotation; an endpoint given with http:// sets S3_USE_HTTPS=0, pkg/credentials/s3/utils.go
# getEndpointConfiguration)
KSERVE_KEY_NAMES = ("awsAccessKeyID", "awsSecretAccessKey")
KSERVE_S3_ENDPOINT, KSERVE_S3_REGION = "serving.kserve.io/s3-endpoint", "serving.kserve.io/s3-region"


def access_key_secret(
    parent: pulumi.Resource, resource_name: str, key: AccessKey, ns: k8s.core.v1.Namespace
) -> k8s.core.v1.Secret:
    """The identity's S3 key pair under the AWS SDKs' names (what `AccessKey.env` reads) and KServe's, with
    the annotations KServe's storage-initializer takes the endpoint and region from."""
    pair = (key.access_key_id, key.secret_access_key)
    data = dict(zip((key.ACCESS_KEY_ID, key.SECRET_ACCESS_KEY), pair, strict=True))
    data |= dict(zip(KSERVE_KEY_NAMES, pair, strict=True))
    return k8s.core.v1.Secret(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=key.secret_name,
            namespace=ns.metadata.name,
            labels=PART_OF,
            annotations={KSERVE_S3_ENDPOINT: key.endpoint, KSERVE_S3_REGION: key.region},
        ),
        type="Opaque",
        string_data={k: pulumi.Output.secret(v) for k, v in data.items()},
        opts=pulumi.ResourceOptions(parent=parent),
    )


def opaque_secret(
    parent: pulumi.Resource,
    resource_name: str,
    name: str,
    ns: k8s.core.v1.Namespace,
    data: Mapping[str, pulumi.Input[str]],
) -> k8s.core.v1.Secret:
    """A Secret whose values stay Pulumi secrets end to end (never plaintext in state or in Helm values)."""
    return k8s.core.v1.Secret(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=ns.metadata.name, labels=PART_OF),
        type="Opaque",
        string_data={k: pulumi.Output.secret(v) for k, v in data.items()},
        opts=pulumi.ResourceOptions(parent=parent),
    )


def config_map(
    parent: pulumi.Resource,
    resource_name: str,
    name: str,
    ns: k8s.core.v1.Namespace,
    data: Mapping[str, pulumi.Input[str]],
) -> k8s.core.v1.ConfigMap:
    return k8s.core.v1.ConfigMap(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=ns.metadata.name, labels=PART_OF),
        data=dict(data),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def database_secret(
    parent: pulumi.Resource,
    resource_name: str,
    ns: k8s.core.v1.Namespace,
    postgres: PostgresEndpoint,
    service: str,
) -> k8s.core.v1.Secret:
    """`<service>-postgres`: where and as whom the service connects (host, port, database, user, password,
    sslmode and, when the server is verified, sslrootcert: where the pod mounts the CA), from the data
    layer's endpoint. The keys are libpq's connection parameters."""
    cred = postgres.databases[service]
    verified = {"sslrootcert": POSTGRES_CA_FILE} if postgres.ca_certificate is not None else {}
    return opaque_secret(
        parent,
        resource_name,
        f"{service}-postgres",
        ns,
        {
            "host": postgres.host,
            "port": postgres.port.apply(str),
            "database": cred.database,
            "username": cred.username,
            "password": cred.password,
            "sslmode": postgres.ssl_mode,
            **verified,
        },
    )


# Where every database client finds the CA the platform PostgreSQL's certificate chains to: one path in
# every pod, from a ConfigMap in the pod's namespace (`database_ca`), named by PGSSLROOTCERT, sslrootcert,
# PgBouncer's server_tls_ca_file and Grafana's ca_cert_path.
POSTGRES_CA_DIR = "/etc/mlplatform/postgres-ca"
POSTGRES_CA_KEY = "ca.crt"
POSTGRES_CA_FILE = f"{POSTGRES_CA_DIR}/{POSTGRES_CA_KEY}"


def database_ca(
    parent: pulumi.Resource, resource_name: str, name: str, ns: k8s.core.v1.Namespace, postgres: PostgresEndpoint
) -> k8s.core.v1.ConfigMap | None:
    """The data layer's PostgreSQL CA as a ConfigMap `name` in `ns` (a CA certificate is public), or None
    where there is none to verify against (sslmode require)."""
    if postgres.ca_certificate is None:
        return None
    return config_map(parent, resource_name, name, ns, {POSTGRES_CA_KEY: postgres.ca_certificate})


def database_ca_volume(
    ca_config_map: pulumi.Input[str] | None,
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The CA ConfigMap mounted read-only at POSTGRES_CA_DIR; nothing without one."""
    if ca_config_map is None:
        return [], []
    return (
        [{"name": "postgres-ca", "configMap": {"name": ca_config_map}}],
        [{"name": "postgres-ca", "mountPath": POSTGRES_CA_DIR, "readOnly": True}],
    )


def tls_env(postgres: PostgresEndpoint) -> list[dict[str, object]]:
    """PGSSLMODE and, when the server is verified, PGSSLROOTCERT (the mounted CA): not credentials, so values
    in the pod spec, where a change of the TLS mode shows in a preview's diff."""
    env: list[dict[str, object]] = [{"name": "PGSSLMODE", "value": postgres.ssl_mode}]
    if postgres.ca_certificate is not None:
        env.append({"name": "PGSSLROOTCERT", "value": POSTGRES_CA_FILE})
    return env


def _chart_inputs(
    pin: ChartPin, namespace: pulumi.Input[str], values: Mapping[str, object], release_name: str | None
) -> dict[str, object]:
    """What a release and a chart both take: the pinned chart and version, the release name and values.

    A None in `values` means "delete this chart default" (Helm deletes a key its user values set to null).
    A null inside `values` need not reach Helm: helm.v4.Chart is built by the provider with the Go SDK,
    which drops null map entries (pulumi/pulumi sdk/go/pulumi/rpc.go `marshalInputOptions`), the other
    SDKs drop them before the engine (pulumi/pulumi#12178 and siblings), and providers before 4.30 did
    too. So every None moves into a YAML values file: the provider reads `valueYamlFiles` as YAML, keeps
    its nulls and merges `values` over them with Helm's own merge (pulumi-kubernetes #4306 documents this
    as the way to delete a default; provider/pkg/helm/values.go, helm_release.go `decodeRelease`)."""
    kept, removed = split_nulls(values)
    inputs: dict[str, object] = {
        "name": release_name,
        "chart": pin.chart,
        "version": pin.version,
        "namespace": namespace,
        "values": kept,
    }
    if removed:
        inputs["value_yaml_files"] = [pulumi.StringAsset(yaml.safe_dump(removed, sort_keys=True))]
    return inputs


def split_nulls(values: Mapping[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    """`values` without its None entries, and those entries as a tree of nulls (for a values file).

    Walks plain mappings only: a None inside a list, or inside an Output's value, cannot be expressed as a
    deletion (Helm replaces lists whole) and stays where it is."""
    kept: dict[str, object] = {}
    removed: dict[str, object] = {}
    for key, value in values.items():
        if value is None:
            removed[key] = None
        elif isinstance(value, Mapping):
            kept[key], below = split_nulls(value)
            if below:
                removed[key] = below
        else:
            kept[key] = value
    return kept, removed


def pinned_release(
    parent: pulumi.Resource,
    resource_name: str,
    pin: ChartPin,
    namespace: pulumi.Input[str],
    values: Mapping[str, object],
    provider: k8s.Provider,
    *,
    timeout_seconds: int,
    release_name: str | None = None,
    wait_for_jobs: bool = False,
    depends_on: Sequence[pulumi.Resource] = (),
    postrender: str | None = None,
) -> k8s.helm.v3.Release:
    """A helm.v3.Release of a chart exactly at its pin in mlplatform/pins.py (chart, repo and version).

    For charts that rely on Helm hooks or ship CRDs in crds/ (Helm installs those once and never deletes
    them, so removing the release cannot cascade-delete users' custom resources). Every caller states how
    long Helm may wait for the release's pods (Helm's own default, 300 s, is shorter than a node pool
    scaling up from zero and pulling large images). `postrender`: an executable Helm pipes the rendered
    manifests through before applying them (Helm's --post-renderer), for an object a chart cannot switch off."""
    return k8s.helm.v3.Release(
        resource_name,
        **_chart_inputs(pin, namespace, values, release_name),
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=pin.repo),
        timeout=timeout_seconds,
        wait_for_jobs=wait_for_jobs,
        postrender=postrender,
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=list(depends_on)),
    )


def pinned_chart(
    parent: pulumi.Resource,
    resource_name: str,
    pin: ChartPin,
    namespace: pulumi.Input[str],
    values: Mapping[str, object],
    provider: k8s.Provider,
    *,
    release_name: str,
    depends_on: Sequence[pulumi.Resource] = (),
) -> k8s.helm.v4.Chart:
    """A helm.v4.Chart at its pin: rendered by Pulumi, so a pull request's preview diffs each Deployment,
    Service and ConfigMap. For hook-free charts without CRDs. There is no release-wide timeout: each object
    is awaited by Pulumi's own readiness logic (a Deployment up to 10 minutes, enough for a node scaling up
    from zero: ~3 minutes for the autoscaler and the instance, then the image pull)."""
    return k8s.helm.v4.Chart(
        resource_name,
        **_chart_inputs(pin, namespace, values, release_name),
        repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=pin.repo),
        opts=pulumi.ResourceOptions(parent=parent, providers=[provider], depends_on=list(depends_on)),
    )


ZONE_KEY, HOST_KEY = "topology.kubernetes.io/zone", "kubernetes.io/hostname"


def spread_affinity(app: str) -> dict[str, object]:
    """Prefer replicas of `app` on distinct zones, then distinct nodes. For charts that take `affinity` but
    not topologySpreadConstraints. Preferred, not required: a required rule would block surge rollouts."""
    selector = {"matchLabels": {NAME_LABEL: app}}
    terms = [
        {"weight": 100, "podAffinityTerm": {"topologyKey": ZONE_KEY, "labelSelector": selector}},
        {"weight": 50, "podAffinityTerm": {"topologyKey": HOST_KEY, "labelSelector": selector}},
    ]
    return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": terms}}


def zone_spread(labels: Mapping[str, str]) -> list[dict[str, object]]:
    """topologySpreadConstraints across zones, then nodes; soft, like spread_affinity, so rollouts never stall."""
    selector = {"matchLabels": dict(labels)}
    return [
        {
            "maxSkew": 1,
            "topologyKey": ZONE_KEY,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": selector,
        },
        {"maxSkew": 1, "topologyKey": HOST_KEY, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": selector},
    ]


def libpq_env(database_secret: pulumi.Input[str], postgres: PostgresEndpoint) -> list[dict[str, object]]:
    """libpq's PG* variables: where and as whom from a service's database Secret (`database_secret`'s keys),
    the TLS mode and CA file from the endpoint (`tls_env`; the pod mounts the CA with `database_ca_volume`).
    A client that connects with no parameters of its own (psql, psycopg2 with an empty DSN) uses exactly
    these (libpq, "Environment Variables")."""
    from_secret = [
        {"name": var, "valueFrom": {"secretKeyRef": {"name": database_secret, "key": key}}}
        for var, key in (
            ("PGHOST", "host"),
            ("PGPORT", "port"),
            ("PGDATABASE", "database"),
            ("PGUSER", "username"),
            ("PGPASSWORD", "password"),
        )
    ]
    return [*from_secret, *tls_env(postgres)]


# Pod Security "restricted" needs an explicit seccomp profile; charts default to none.
RESTRICTED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def single_writer_spec(
    app: str, pod_labels: Mapping[str, str], annotations: pulumi.Input[Mapping[str, object]], pod: object
) -> dict[str, object]:
    """A Deployment spec for one pod that owns a ReadWriteOnce volume (a small stateful server: in-cluster
    Valkey, SeaweedFS): one replica, and Recreate so the old pod goes before the new one mounts the volume."""
    return {
        "replicas": 1,
        "strategy": {"type": "Recreate"},
        "selector": {"matchLabels": {NAME_LABEL: app}},
        "template": {"metadata": {"labels": dict(pod_labels), "annotations": annotations}, "spec": pod},
    }


def periodic_job_spec(
    schedule: str, app: str, pod: Mapping[str, object], *, deadline_seconds: int
) -> dict[str, object]:
    """A CronJob spec for the platform's periodic batch work: in UTC, never two runs at once, two retries,
    a deadline before the next run, the last three runs of each outcome kept for their logs. A run missed by
    more than 5 minutes (the controller down, the CronJob suspended, then resumed) is skipped, not started
    late: without startingDeadlineSeconds Kubernetes starts the most recent missed run at once on resume
    (CronJob docs, "Job creation")."""
    return {
        "schedule": schedule,
        "timeZone": "Etc/UTC",
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 300,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {
            "spec": {
                "backoffLimit": 2,
                "activeDeadlineSeconds": deadline_seconds,
                "template": {"metadata": {"labels": {NAME_LABEL: app}}, "spec": dict(pod)},
            }
        },
    }


Rule = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]  # (api groups, resources, verbs)


def namespaced_grant(
    parent: pulumi.Resource,
    prefix: str,
    role_name: str,
    namespace: k8s.core.v1.Namespace,
    account: k8s.core.v1.ServiceAccount,
    rules: Sequence[Rule],
) -> k8s.rbac.v1.RoleBinding:
    """A Role with `rules` in `namespace`, bound to `account` (which may live elsewhere): a grant that holds
    in that one namespace only, named `<prefix>-role` / `<prefix>-role-binding`."""
    metadata = k8s.meta.v1.ObjectMetaArgs(name=role_name, namespace=namespace.metadata.name, labels=PART_OF)
    role = k8s.rbac.v1.Role(
        f"{prefix}-role",
        metadata=metadata,
        rules=[k8s.rbac.v1.PolicyRuleArgs(api_groups=list(g), resources=list(r), verbs=list(v)) for g, r, v in rules],
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return k8s.rbac.v1.RoleBinding(
        f"{prefix}-role-binding",
        metadata=metadata,
        role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name),
        subjects=[
            k8s.rbac.v1.SubjectArgs(
                kind="ServiceAccount", name=account.metadata.name, namespace=account.metadata.namespace
            )
        ],
        opts=pulumi.ResourceOptions(parent=parent),
    )
