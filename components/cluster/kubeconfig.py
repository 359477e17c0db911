"""A kubeconfig that authenticates through the cloud's CLI plugin: no long-lived token in state."""

from __future__ import annotations

import pulumi


def exec_kubeconfig(
    cluster_name: pulumi.Input[str],
    endpoint: pulumi.Input[str],
    ca_data: pulumi.Input[str] | None,
    *,
    command: str,
    args: pulumi.Input[list[str]],
) -> pulumi.Output[str]:
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": command,
            "args": args,
            "interactiveMode": "Never",
        }
    }
    # no CA data: the endpoint's certificate is publicly trusted (GKE's DNS endpoint)
    cluster = {"server": endpoint} | ({"certificate-authority-data": ca_data} if ca_data is not None else {})
    return pulumi.Output.json_dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster_name, "cluster": cluster}],
            "users": [{"name": cluster_name, "user": user}],
            "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
            "current-context": cluster_name,
        }
    )
