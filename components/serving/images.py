"""The images the serving layer runs that this repository builds itself (components/images.py builds them):
the mlflow-3 runtime's server and the Feast transformer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker_build as docker_build

from components.contracts import ContainerRegistry
from components.images import IMAGES_DIR, PLATFORM, PROJECT_DIR, ImageSpec, build_image, context_hash

RUNTIME = "mlserver-mlflow"  # the mlflow-3 ServingRuntime's server (components/serving/kserve.py)
TRANSFORMER = "feast-transformer"  # the Feast transformer InferenceServices put before their predictor
# Every image the serving layer ships, in build order.
PLATFORM_IMAGES = (RUNTIME, TRANSFORMER)
__all__ = [
    "IMAGES_DIR",
    "PLATFORM",
    "PLATFORM_IMAGES",
    "PROJECT_DIR",
    "RUNTIME",
    "TRANSFORMER",
    "Images",
    "ImagesArgs",
    "context_hash",
]


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
        self.images = {
            image: build_image(self, f"{name}-{image}", ImageSpec(image), args.registry, args.project_dir)
            for image in PLATFORM_IMAGES
        }
        self.outputs = ServingImages(runtime=self.images[RUNTIME].ref, transformer=self.images[TRANSFORMER].ref)
        self.register_outputs({image: built.ref for image, built in self.images.items()})
