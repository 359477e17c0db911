"""Client layer: how people and their tools reach the platform. The UIs behind single sign-on (with a
domain configured), JupyterHub notebooks, and the client configuration a data scientist's MLflow, Feast and
KServe clients need.

Consumes only typed outputs of the layers before it; no cloud-specific branching here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from components import workloads
from components.client.configuration import ClientConfiguration, ClientConfigurationArgs
from components.client.exposure import Exposure, ExposureArgs, platform_routes
from components.client.jupyterhub import JupyterHub, JupyterHubArgs, NotebookClients
from components.contracts import (
    BucketPurpose,
    ClusterOutputs,
    DataOutputs,
    Namespace,
    PlatformNamespaces,
    StorageOutputs,
)
from components.lifecycle import LifecycleOutputs
from components.observability import ObservabilityOutputs
from components.placement import Placement
from components.serving import ServingOutputs
from mlplatform.chartkeys import selected_pin
from mlplatform.config import HaProfile, PlatformConfig
from mlplatform.config.models import Sizing
from mlplatform.pins import JUPYTERHUB


@dataclass(frozen=True)
class ClientArgs:
    cluster: ClusterOutputs
    namespaces: PlatformNamespaces
    storage: StorageOutputs
    data: DataOutputs
    lifecycle: LifecycleOutputs
    serving: ServingOutputs
    observability: ObservabilityOutputs
    cfg: PlatformConfig


@dataclass(frozen=True)
class ClientOutputs:
    # UI name -> its URL (https://<ui>.<domain>) when exposed; empty without a domain
    ui_urls: dict[str, str] = field(default_factory=dict)
    # what a data scientist's clients need (components/client/configuration.py): the stack output
    # `clientConfiguration`, written to clients/<stack>.env and clients/<stack>/feature_store.yaml by `plan`
    configuration: pulumi.Output[dict] | None = None
    # the UIs behind oauth2-proxy -> the redirect URI it sends to the provider (register it with the SSO client)
    sso_callback_urls: dict[str, str] = field(default_factory=dict)


class Client(pulumi.ComponentResource):
    outputs: ClientOutputs

    def __init__(self, name: str, args: ClientArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:client:Client", name, None, opts)
        ui_urls: dict[str, str] = {}
        callbacks: dict[str, str] = {}
        configuration = ClientConfiguration(
            f"{name}-configuration",
            ClientConfigurationArgs.of(args.cfg, args.lifecycle, args.observability),
            opts=pulumi.ResourceOptions(parent=self),
        )
        cluster, feast = args.cluster, args.lifecycle.feast_client
        # the lifecycle layer always makes the platform namespace's Feast client
        if feast is not None and args.cfg.services.jupyterhub.enabled:
            hub = JupyterHub(
                f"{name}-jupyterhub",
                JupyterHubArgs(
                    namespace=args.namespaces[Namespace.PLATFORM], identity=args.storage.identity(workloads.NOTEBOOK),
                    clients=NotebookClients(
                        args.lifecycle.mlflow, feast, Namespace.SERVING.value,
                        args.storage.buckets[BucketPurpose.DATASETS].store,
                    ),
                    cpu_pool=cluster.cpu_pool, gpu_pools=cluster.gpu_pools, storage_class=cluster.block_storage_class,
                    postgres=args.data.postgres,
                    pin=selected_pin(JUPYTERHUB, args.cfg.services.jupyterhub.version), cfg=args.cfg,
                    provider=cluster.kubernetes_provider,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )  # fmt: skip
            if hub.outputs.url is not None:
                ui_urls.setdefault("jupyter", hub.outputs.url)
        if args.cfg.client.domain is not None:  # the UIs on the ingress gateway behind single sign-on
            multi_zone = args.cfg.ha is HaProfile.MULTI_ZONE
            exposure = Exposure(
                f"{name}-exposure",
                ExposureArgs(
                    cfg=args.cfg, namespace=args.namespaces[Namespace.ISTIO],
                    routes=platform_routes(args.cfg, args.lifecycle, args.observability),
                    placement=Placement(
                        cluster.cpu_pool, spread=multi_zone, small=args.cfg.services.sizing is Sizing.SMALL
                    ),
                    replicas=2 if multi_zone else 1,
                    provider=cluster.kubernetes_provider, cert_manager=args.serving.cert_manager,
                    istio=args.serving.istio,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )  # fmt: skip
            ui_urls.update(exposure.outputs.ui_urls)
            callbacks.update(exposure.outputs.callback_urls)
        self.outputs = ClientOutputs(ui_urls=ui_urls, configuration=configuration.output, sso_callback_urls=callbacks)
        self.register_outputs({"uiUrls": ui_urls})
