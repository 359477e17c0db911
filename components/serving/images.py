"""The images the serving layer runs that this repository builds itself, built and pushed at `pulumi up`.

Each is a directory of `images/` with its Dockerfile and pinned requirements. The list is explicit (a new
directory is not shipped by being there) and each image is tagged with the content hash of its directory,
so an unchanged directory is neither rebuilt nor pushed again, a changed one gets a new tag (the registry's
tags are immutable), and the cluster runs each by the digest the push returned (`<tag>@sha256:...`).

Building needs Docker with buildx on the deployer's machine (pulumi-docker-build drives BuildKit); preview
does not build. The push authenticates with the registry's short-lived credentials the storage layer reads
at every run (components/contracts.py ContainerRegistry).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker_build as docker_build

from components.contracts import ContainerRegistry

PROJECT_DIR = Path(__file__).resolve().parents[2]
IMAGES_DIR = "images"  # relative to the project: `pulumi up` runs there, and plans stay machine-independent
RUNTIME = "mlserver-mlflow"  # the mlflow-3 ServingRuntime's server (components/serving/kserve.py)
TRANSFORMER = "feast-transformer"  # the Feast transformer InferenceServices put before their predictor
# Every image the platform ships, in build order.
PLATFORM_IMAGES = (RUNTIME, TRANSFORMER)
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
class ImagesArgs:
    registry: ContainerRegistry
    project_dir: Path = PROJECT_DIR


@dataclass(frozen=True)
class ServingImages:
    """Digest-pinned references (`<registry>/<image>:<hash>@sha256:<digest>`) to run."""

    runtime: pulumi.Output[str]
    transformer: pulumi.Output[str]


class Images(pulumi.ComponentResource):
    outputs: ServingImages
    images: dict[str, docker_build.Image]

    def __init__(self, name: str, args: ImagesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:serving:Images", name, None, opts)
        registry = args.registry
        self.images = {}
        for image in PLATFORM_IMAGES:
            directory = args.project_dir / IMAGES_DIR / image
            context = f"{IMAGES_DIR}/{image}"
            self.images[image] = docker_build.Image(
                f"{name}-{image}",
                context=docker_build.BuildContextArgs(location=context),
                dockerfile=docker_build.DockerfileArgs(location=f"{context}/Dockerfile"),
                platforms=[PLATFORM],
                tags=[registry.image(image, context_hash(directory))],
                push=True,
                # a preview shows the tag the build would push; building is for `up`
                build_on_preview=False,
                registries=[
                    docker_build.RegistryArgs(
                        address=registry.address, username=registry.username, password=registry.password
                    )
                ],
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.outputs = ServingImages(runtime=self.images[RUNTIME].ref, transformer=self.images[TRANSFORMER].ref)
        self.register_outputs({image: built.ref for image, built in self.images.items()})
