"""The explicit cloud provider every infra resource uses: region (and GCP project) from validated config,
and default tags/labels so every resource says which platform and stack own it."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp

from mlplatform.config import Cloud, PlatformConfig

# The Google APIs the program calls, enabled by the program itself (a new project has most of them off and
# every first call would fail with SERVICE_DISABLED). Only the Service Usage API must be on beforehand.
GCP_APIS = (
    "artifactregistry.googleapis.com",  # the stack's image registry (components/storage/gcp.py)
    "cloudresourcemanager.googleapis.com",  # project IAM bindings
    "compute.googleapis.com",  # VPC, NAT, private service access range
    # Artifact Analysis: scans every image pushed to Artifact Registry (the registry's scan on push)
    "containerscanning.googleapis.com",
    "container.googleapis.com",  # GKE
    "iam.googleapis.com",  # service accounts
    "iamcredentials.googleapis.com",  # Workload Identity token exchange
    "managedkafka.googleapis.com",
    "redis.googleapis.com",  # Memorystore
    "servicenetworking.googleapis.com",  # private service access for Cloud SQL and Memorystore
    "sqladmin.googleapis.com",  # Cloud SQL
    "storage.googleapis.com",
)


def cloud_provider(name: str, cfg: PlatformConfig) -> pulumi.ProviderResource | None:
    """None on local: the stack creates no cloud resource, so it configures no cloud provider (and needs no
    cloud credentials); every layer there runs under the cluster's Kubernetes provider."""
    if cfg.cloud is Cloud.LOCAL:
        return None
    tags = {"mlplatform-stack": pulumi.get_stack(), "mlplatform-profile": cfg.profile.value, "managed-by": "pulumi"}
    if cfg.cloud is Cloud.AWS:
        return aws.Provider(name, region=cfg.region, default_tags=aws.ProviderDefaultTagsArgs(tags=tags))
    # The APIs are enabled through their own provider; the main provider depends on them, so every GCP
    # resource (all use the main provider) is created after its API is on.
    apis = gcp.Provider(f"{name}-apis", project=cfg.gcp_project, region=cfg.region)
    enabled = [
        gcp.projects.Service(
            f"{name}-{api.split('.')[0]}",
            service=api,
            # the project may have used the API before this stack and may still need it after it
            disable_on_destroy=False,
            opts=pulumi.ResourceOptions(provider=apis, parent=apis),
        )
        for api in GCP_APIS
    ]
    return gcp.Provider(
        name,
        project=cfg.gcp_project,
        region=cfg.region,
        default_labels=tags,
        opts=pulumi.ResourceOptions(depends_on=enabled),
    )
