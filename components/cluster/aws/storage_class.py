"""gp3 volumes for the platform's persistent volumes. EKS's only built-in class is gp2 (in-tree, older,
slower per GiB); the EBS CSI driver (an add-on here) provisions gp3, encrypted, in the pod's zone."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.kube import PART_OF

GP3 = "gp3"


class BlockStorage(pulumi.ComponentResource):
    class_name: str

    def __init__(self, name: str, provider: k8s.Provider, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:cluster:BlockStorage", name, None, opts)
        k8s.storage.v1.StorageClass(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=GP3, labels=PART_OF),
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true"},
            # bind where the pod lands, so a volume never sits in another zone than its pod
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Delete",
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.class_name = GP3
        self.register_outputs({"storageClass": GP3})
