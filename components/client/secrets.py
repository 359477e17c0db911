"""The single sign-on client's secret, from the cloud's secret manager into a Kubernetes Secret in the
namespace of each workload that signs people in (oauth2-proxy, Grafana, Airflow, JupyterHub).

Config holds only a reference (`mlplatform:client.sso.clientSecret`: mlplatform/config/client.py
CloudSecretRef). `pulumi up` reads the secret's latest version with the deployer's credentials through the
stack's cloud provider and writes it as a Pulumi secret (encrypted in the state, never in Helm values).
Why a copy per namespace: a pod can only reference a Secret in its own namespace, and a Kubernetes Secret
cannot be the source because the namespaces do not exist before `pulumi up`.

The cloud provider comes from the parent chain: stacks/platform.py gives the in-cluster layers the
stack's cloud provider beside the Kubernetes one, so the read runs in the stack's account/project and
region, exactly as the infra layers' reads do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.kube import PART_OF
from mlplatform.config import Cloud, PlatformConfig
from mlplatform.config.client import CloudSecretRef

# The keys of every SSO client Secret: oauth2-proxy's own names for them (the chart's `config.existingSecret`
# reads client-id, client-secret and cookie-secret: oauth2-proxy/manifests helm/oauth2-proxy/values.yaml
# @ oauth2-proxy-10.7.0, `config.requiredSecretKeys`), reused everywhere so an env var's secretKeyRef reads
# the same in every workload.
CLIENT_ID_KEY = "client-id"
CLIENT_SECRET_KEY = "client-secret"

# Google Secret Manager's full resource name of a secret (`projects/<project>/secrets/<id>`)
_GCP_SECRET_NAME = re.compile(r"^projects/(?P<project>[^/]+)/secrets/(?P<secret>[^/]+)$")


def cloud_secret_value(parent: pulumi.Resource, ref: CloudSecretRef, cloud: Cloud) -> pulumi.Output[str]:
    """The latest version of the referenced secret (or the value of its `jsonKey`), as a Pulumi secret.

    AWS: Secrets Manager GetSecretValue at stage AWSCURRENT (the data source's default), by name or ARN.
    GCP: Secret Manager `versions/latest:access` through the `...VersionAccess` data source, which needs
    only roles/secretmanager.secretAccessor (the metadata variant also needs versions.get)."""
    opts = pulumi.InvokeOutputOptions(parent=parent)
    if cloud is Cloud.AWS:
        raw = aws.secretsmanager.get_secret_version_output(secret_id=ref.secret_id, opts=opts).secret_string
    else:
        full = _GCP_SECRET_NAME.match(ref.secret_id)
        secret, project = (full["secret"], full["project"]) if full else (ref.secret_id, None)
        raw = gcp.secretmanager.get_secret_version_access_output(secret=secret, project=project, opts=opts).secret_data
    return pulumi.Output.secret(raw.apply(lambda value: json_value(value, ref)))


def json_value(value: str, ref: CloudSecretRef) -> str:
    """`value` itself, or, with a `jsonKey`, that key's string in the JSON object `value` holds. Fails the
    update with a message naming the reference (never the value) when the secret is not of that shape."""
    if ref.json_key is None:
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ValueError(f"secret {ref.secret_id}: jsonKey {ref.json_key} is set but its value is not a JSON object")
    picked = parsed.get(ref.json_key)
    if not isinstance(picked, str) or not picked:
        raise ValueError(f"secret {ref.secret_id}: its JSON object has no non-empty string at {ref.json_key}")
    return picked


def sso_client_secret(
    parent: pulumi.Resource,
    name: str,
    namespace: k8s.core.v1.Namespace | pulumi.Input[str],
    cfg: PlatformConfig,
    provider: k8s.Provider | None = None,
    *,
    secret_name: str | None = None,
    extra: Mapping[str, pulumi.Input[str]] | None = None,
) -> k8s.core.v1.Secret:
    """A Secret (`secret_name`, default `name`) in `namespace` holding the SSO client's id (CLIENT_ID_KEY)
    and secret (CLIENT_SECRET_KEY), plus `extra` entries (e.g. oauth2-proxy's cookie secret).

    Only with single sign-on configured (a domain): callers create it only then, so a stack without a
    domain never reads a cloud secret. `provider`: the Kubernetes provider, when the parent chain does not
    already carry it."""
    sso = cfg.client.sso
    if sso is None:
        raise ValueError("sso_client_secret needs mlplatform:client.sso (set only with a domain)")
    ns = namespace.metadata.name if isinstance(namespace, k8s.core.v1.Namespace) else namespace
    data: dict[str, pulumi.Input[str]] = {
        CLIENT_ID_KEY: sso.client_id,
        CLIENT_SECRET_KEY: cloud_secret_value(parent, sso.client_secret, cfg.cloud),
        **(extra or {}),
    }
    return k8s.core.v1.Secret(
        name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=secret_name or name, namespace=ns, labels=PART_OF),
        type="Opaque",
        string_data={k: pulumi.Output.secret(v) for k, v in data.items()},
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )
