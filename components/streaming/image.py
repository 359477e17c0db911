"""The feature-push job's image, built from streaming/ (its Dockerfile) and pushed at `pulumi up`, tagged by
the directory's content hash and run by digest: the same build as the serving layer's images
(components/serving/images.py), for the streaming layer's one image."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_docker_build as docker_build

from components.contracts import ContainerRegistry
from components.images import registry_logins
from components.serving.images import PLATFORM, PROJECT_DIR, context_hash

CONTEXT = "streaming"  # relative to the project, where `pulumi up` runs
IMAGE = "feature-push"


def job_image(
    parent: pulumi.Resource, name: str, registry: ContainerRegistry, project_dir: Path = PROJECT_DIR
) -> docker_build.Image:
    return docker_build.Image(
        f"{name}-{IMAGE}-image",
        context=docker_build.BuildContextArgs(location=CONTEXT),
        dockerfile=docker_build.DockerfileArgs(location=f"{CONTEXT}/Dockerfile"),
        platforms=[PLATFORM],
        tags=[registry.image(IMAGE, context_hash(project_dir / CONTEXT))],
        push=True,
        build_on_preview=False,
        registries=registry_logins(registry),
        opts=pulumi.ResourceOptions(parent=parent),
    )
