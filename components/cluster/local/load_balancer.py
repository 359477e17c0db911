"""How a LoadBalancer Service gets an address on a local cluster.

kind has no load balancer of its own: a LoadBalancer Service stays <pending> unless something assigns it
an address. The platform does not install one: kind's documented way is Cloud Provider KIND
(sigs.k8s.io/cloud-provider-kind), a binary run on the host that watches the cluster and starts a load
balancer container on the kind network for each LoadBalancer Service (kind docs "LoadBalancer",
site/content/docs/user/loadbalancer.md). It reads no annotation, so both profiles carry none, and
nothing in the cluster must run first (`ready` is empty). Without it the Istio gateway's Service stays
pending and the UIs are reached by `kubectl port-forward` (README, "Local quickstart"): `pulumi up` does not
wait on a LoadBalancer address (the gateway's Service is read, not awaited)."""

from __future__ import annotations

from components.contracts import LoadBalancerProfile

LOCAL_LOAD_BALANCER = LoadBalancerProfile(internal_annotations={}, external_annotations={})
