"""Images this repository builds itself, built and pushed at `pulumi up`, for any layer that runs one.

Each is a directory of `images/` with its Dockerfile and pinned requirements. Which images ship is explicit
(a new directory is not shipped by being there) and each image is tagged with the content hash of its
directory, so an unchanged directory is neither rebuilt nor pushed again, a changed one gets a new tag (the
registry's tags are immutable), and the cluster runs each by the digest the push returned
(`<tag>@sha256:...`). An image built with build arguments (one Dockerfile per cloud's variant) carries them
in its name, so each variant has its own tags.

Building needs Docker with buildx on the deployer's machine (pulumi-docker-build drives BuildKit); preview
does not build. The push authenticates with the registry's short-lived credentials the storage layer reads
at every run (components/contracts.py ContainerRegistry).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_docker_build as docker_build

from components.contracts import ContainerRegistry

PROJECT_DIR = Path(__file__).resolve().parents[1]
IMAGES_DIR = "images"  # relative to the project: `pulumi up` runs there, and plans stay machine-independent
# The cluster's nodes (EKS and GKE node pools of the platform's machine types) are x86-64.
PLATFORM = docker_build.Platform.LINUX_AMD64
TAG_LENGTH = 16  # hex digits of the content hash: 64 bits, no collision among one repository's images
# What a directory can hold that is no part of its image: Python's caches (the tests import the sources)
IGNORED = ("__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache")


def context_hash(directory: Path) -> str:
    """sha256 over every file of the build context (relative path and bytes, in path order), so the tag
    changes exactly when what the build reads changes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory)
        if any(part in IGNORED for part in relative.parts) or path.suffix == ".pyc":
            continue
        digest.update(relative.as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:TAG_LENGTH]


@dataclass(frozen=True)
class ImageSpec:
    """One image: `directory` under images/, built with `build_args`, pushed as `name`."""

    directory: str
    build_args: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return "-".join((self.directory, *self.build_args.values()))


def registry_logins(registry: ContainerRegistry) -> list[docker_build.RegistryArgs] | None:
    """The login a push needs; none where the registry takes anonymous pushes (a local cluster's registry)."""
    if registry.username is None:
        return None
    return [docker_build.RegistryArgs(address=registry.address, username=registry.username, password=registry.password)]


def build_image(
    parent: pulumi.Resource,
    resource_name: str,
    spec: ImageSpec,
    registry: ContainerRegistry,
    project_dir: Path = PROJECT_DIR,
) -> docker_build.Image:
    """The image built from its directory and pushed to the stack's registry; `.ref` is its digest reference."""
    context = f"{IMAGES_DIR}/{spec.directory}"
    return docker_build.Image(
        resource_name,
        context=docker_build.BuildContextArgs(location=context),
        dockerfile=docker_build.DockerfileArgs(location=f"{context}/Dockerfile"),
        build_args=dict(spec.build_args) or None,
        platforms=[PLATFORM],
        tags=[registry.image(spec.name, context_hash(project_dir / IMAGES_DIR / spec.directory))],
        push=True,
        # a preview shows the tag the build would push; building is for `up`
        build_on_preview=False,
        registries=registry_logins(registry),
        opts=pulumi.ResourceOptions(parent=parent),
    )
