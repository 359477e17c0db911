"""The image registry of a local stack: the registry container kind's "Local Registry" pattern runs beside
the cluster (kubernetes-sigs/kind site/static/examples/kind-with-registry.sh @ 0f1d6c1; README, "Local
quickstart").

That pattern starts `registry:3` published on the host as 127.0.0.1:5001, connects it to the `kind` docker
network, and gives every node's containerd a hosts.toml under /etc/containerd/certs.d/localhost:5001 that
sends pulls of `localhost:5001/...` to the container (`http://kind-registry:5000`). So one name,
`cluster.registry`, is right from both ends: `pulumi up` pushes to localhost:5001 on the deployer's machine,
and the kubelet pulls the same reference on the nodes. The program creates no resource for it: the registry
exists with the cluster, as the cluster does.

The registry takes anonymous pushes over plain HTTP on the loopback address, so there are no credentials
(username and password None: components/images.py pushes without a login). BuildKit, which builds and
pushes, must reach the host's loopback: a docker-container builder needs `--driver-opt network=host`
(README, "Local quickstart")."""

from __future__ import annotations

import pulumi

from components.contracts import ContainerRegistry, LocalClusterFacts

REPOSITORY = "mlplatform"  # the path the platform's images share: <registry>/mlplatform/<image>:<tag>


def local_registry(facts: LocalClusterFacts) -> ContainerRegistry:
    """The stack's registry on a local cluster, from the cluster layer's facts (`cluster.registry`). The
    storage adapter calls it as `local_registry(cluster.facts(LocalClusterFacts))`."""
    return ContainerRegistry(
        url=pulumi.Output.from_input(f"{facts.registry}/{REPOSITORY}"),
        address=pulumi.Output.from_input(facts.registry),
        username=None,
        password=None,
        one_image_per_repository=False,
    )
