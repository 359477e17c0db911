"""The explicit cloud provider every infra resource uses: region (and GCP project) from validated config,
and default tags/labels so every resource says which platform and stack own it."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp

from mlplatform.config import Cloud, PlatformConfig


def cloud_provider(name: str, cfg: PlatformConfig) -> pulumi.ProviderResource:
    tags = {"mlplatform-stack": pulumi.get_stack(), "mlplatform-profile": cfg.profile.value, "managed-by": "pulumi"}
    if cfg.cloud is Cloud.AWS:
        return aws.Provider(name, region=cfg.region, default_tags=aws.ProviderDefaultTagsArgs(tags=tags))
    return gcp.Provider(name, project=cfg.gcp_project, region=cfg.region, default_labels=tags)
