"""The StorageClass persistent volumes use on kind: `standard`, which every kind cluster has already.

kind installs Rancher's local-path-provisioner as its default storage (a `standard` StorageClass, default,
provisioner rancher.io/local-path, WaitForFirstConsumer, reclaim Delete: kubernetes-sigs/kind
pkg/build/nodeimage/const_storage.go @ 01d9cb2, which the node image holds as
/kind/manifests/default-storage.yaml and `kind create cluster` applies:
pkg/cluster/internal/create/actions/installstorage/storage.go). The volume is a directory on the node
the pod first lands on; a laptop's cluster needs no more. Another local distribution names its class
otherwise (k3d and k3s: `local-path`, minikube: `standard`): the one constant to change."""

from __future__ import annotations

KIND_STORAGE_CLASS = "standard"
