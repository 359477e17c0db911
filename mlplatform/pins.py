"""Every Helm chart and image the platform installs, pinned in one place.

Config (`services.<name>.version`) may override a pin per stack; the default comes from here. The pins
match the reference copies in ../shared/upstream/charts (see SOURCES.md there), against which the values
documents are checked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ChartPin:
    chart: str
    repo: str
    version: str
    app_version: str
    # the chart's directory name in ../shared/upstream/charts (and in `render --charts DIR`) when it differs
    # from the chart's name (Istio's charts are `base`, `istiod`, `gateway`)
    upstream: str | None = None
    # the version Chart.yaml holds in the source tree at the pinned tag, when the release tooling writes the
    # real one only into the published package (Istio 1.0.0, cert-manager v0.0.0, Knative "{{ version }}")
    placeholder: str | None = None

    @property
    def source_dir(self) -> str:
        return self.upstream or self.chart


MLFLOW = ChartPin("mlflow", "https://community-charts.github.io/helm-charts", "1.11.5", "3.15.1")
FEAST_FEATURE_SERVER = ChartPin(
    "feast-feature-server", "https://feast-helm-charts.storage.googleapis.com", "0.66.0", "0.66.0"
)
AIRFLOW = ChartPin("airflow", "https://airflow.apache.org", "1.19.0", "3.1.7")
KUBERAY_OPERATOR = ChartPin("kuberay-operator", "https://ray-project.github.io/kuberay-helm", "1.7.0", "1.7.0")
KSERVE = ChartPin("kserve-resources", "oci://ghcr.io/kserve/charts", "v0.20.0", "v0.20.0")
KUBE_PROMETHEUS_STACK = ChartPin(
    "kube-prometheus-stack", "https://prometheus-community.github.io/helm-charts", "88.5.3", "v0.93.1"
)
GRAFANA = ChartPin("grafana", "https://grafana-community.github.io/helm-charts", "12.11.1", "13.2.0")
# The OSS Loki chart moved to grafana-community (grafana/loki 7.x is kept for Grafana Enterprise Logs only,
# grafana/loki#20705); its default mode is Monolithic. Its upstream copy is charts/loki-community.
LOKI = ChartPin(
    "loki", "https://grafana-community.github.io/helm-charts", "18.11.0", "3.7.6", upstream="loki-community"
)
# Promtail reached end of life (2026-03-02) and left Loki in 3.7.3: Alloy collects the pods' logs.
ALLOY = ChartPin("alloy", "https://grafana.github.io/helm-charts", "1.11.1", "v1.18.1")
DCGM_EXPORTER = ChartPin("dcgm-exporter", "https://nvidia.github.io/dcgm-exporter/helm-charts", "4.8.2", "4.8.2")
PUSHGATEWAY = ChartPin(
    "prometheus-pushgateway", "https://prometheus-community.github.io/helm-charts", "3.8.0", "v1.11.3"
)
NVIDIA_DEVICE_PLUGIN = ChartPin(
    "nvidia-device-plugin", "https://nvidia.github.io/k8s-device-plugin", "0.20.0", "0.20.0"
)
# The chart's default image is its appVersion (1.35); the image actually run is chosen per Kubernetes minor
# below, because the autoscaler supports only the Kubernetes minor it was built for.
CLUSTER_AUTOSCALER = ChartPin("cluster-autoscaler", "https://kubernetes.github.io/autoscaler", "9.59.0", "1.35.0")

# -- serving: install order cert-manager -> Istio -> Knative -> KServe (serving-observability-facts.md §1) --
CERT_MANAGER = ChartPin("cert-manager", "https://charts.jetstack.io", "v1.21.1", "v1.21.1", placeholder="v0.0.0")
# Istio 1.30.3, the newest GA and the only line still supported (1.28 and 1.29 reached end of life in July
# and August 2026). Knative's net-istio CI tested 1.28 (Knative 1.21) and 1.29 (1.22); it uses only the
# stable Gateway and VirtualService APIs, which 1.30 serves unchanged, with Istio as ingress only (no mesh).
ISTIO_REPO = "https://istio-release.storage.googleapis.com/charts"
ISTIO_BASE = ChartPin("base", ISTIO_REPO, "1.30.3", "1.30.3", upstream="istio-base", placeholder="1.0.0")
ISTIOD = ChartPin("istiod", ISTIO_REPO, "1.30.3", "1.30.3", placeholder="1.0.0")
ISTIO_GATEWAY = ChartPin("gateway", ISTIO_REPO, "1.30.3", "1.30.3", upstream="istio-gateway", placeholder="1.0.0")
# The operator 1.23 bundles Serving 1.20-1.23; the Serving version follows the Kubernetes minor below.
KNATIVE_OPERATOR = ChartPin(
    "knative-operator", "https://knative.github.io/operator", "v1.23.0", "v1.23.0", placeholder="{{ version }}"
)
KSERVE_CRD = ChartPin("kserve-crd", "oci://ghcr.io/kserve/charts", "v0.20.0", "v0.20.0")
KSERVE_RUNTIME_CONFIGS = ChartPin("kserve-runtime-configs", "oci://ghcr.io/kserve/charts", "v0.20.0", "v0.20.0")
AWS_LOAD_BALANCER_CONTROLLER = ChartPin(
    "aws-load-balancer-controller", "https://aws.github.io/eks-charts", "3.5.0", "v3.5.0"
)
# -- streaming (components/streaming) ---------------------------------------------------------------------
# The Flink Kubernetes Operator 1.15.0 (tag release-1.15.0, 2026-05-07). Its chart's image.tag reads `latest`
# at the tag (helm/flink-kubernetes-operator/values.yaml): the program sets it to the appVersion.
FLINK_OPERATOR = ChartPin(
    "flink-kubernetes-operator",
    "https://downloads.apache.org/flink/flink-kubernetes-operator-1.15.0/",
    "1.15.0",
    "1.15.0",
)
FLINK_OPERATOR_IMAGE = "ghcr.io/apache/flink-kubernetes-operator"
# Flink 2.2: the newest minor the operator's FlinkDeployment CRD names (flinkVersion enum v1_13..v2_2,
# ../shared/upstream/crds/flink.apache.org_flinkdeployments.yaml) that the Kafka connector 5.0.0 is tested
# with (apache/flink-connector-kafka v5.0.0 .github/workflows/push_pr.yml: flink 2.2.0 and 2.1.1; its pom
# builds against Flink 2.1.0 and kafka-clients 4.2.0). The job image's Dockerfile (streaming/Dockerfile)
# and requirements (streaming/requirements.txt) hold the same versions; a test keeps them equal.
FLINK_VERSION = "2.2.1"
FLINK_CRD_VERSION = "v2_2"  # FlinkDeployment spec.flinkVersion for FLINK_VERSION
FLINK_KAFKA_CONNECTOR = "org.apache.flink:flink-connector-kafka:5.0.0-2.1"
# The Java OAUTHBEARER handlers the data layer's KafkaClientAuth names (jvm_artifacts): aws/aws-msk-iam-auth
# v2.3.6 and googleapis/managedkafka kafka-java-auth v1.0.6
MSK_IAM_JAVA_AUTH = "software.amazon.msk:aws-msk-iam-auth:2.3.6"
MANAGED_KAFKA_JAVA_AUTH = "com.google.cloud.hosted.kafka:managed-kafka-auth-login-handler:1.0.6"

# -- in-cluster data services (components/data/in_cluster) -----------------------------------------------
# CloudNativePG: the operator chart 0.29.0 (tag cloudnative-pg-v0.29.0 of cloudnative-pg/charts), operator 1.30.0
CLOUDNATIVE_PG = ChartPin("cloudnative-pg", "https://cloudnative-pg.github.io/charts", "0.29.0", "1.30.0")
# The PostgreSQL operand image per server major (data.postgres.version): the tags operator 1.30.0 is tested
# with, newest minor of each major (cloudnative-pg/cloudnative-pg .github/pg_versions.json @ v1.30.0; its own
# default, pkg/versions/versions.go DefaultImageName, is 18.4-system-trixie). "system" images are the
# Debian-based ones the operator defaults to.
CNPG_POSTGRES_IMAGE = "ghcr.io/cloudnative-pg/postgresql"
CNPG_POSTGRES_TAGS: dict[str, str] = {
    "15": "15.18-system-trixie",
    "16": "16.14-system-trixie",
    "17": "17.10-system-trixie",
    "18": "18.4-system-trixie",
}
# The Barman Cloud plugin (CNPG-I), which backs the Cluster up to the object store: chart plugin-barman-cloud 0.7.0
# (tag plugin-barman-cloud-v0.7.0 of cloudnative-pg/charts, the newest published chart; appVersion v0.13.0), the
# plugin v0.13.0 (cloudnative-pg/plugin-barman-cloud, go.mod: built against cloudnative-pg v1.29.1 and CNPG-I
# machinery v0.4.2; the operator's in-tree barmanObjectStore is deprecated since 1.26). Its sidecar image ships
# barman[cloud] 3.19.1 (containers/sidecar-requirements.in @ v0.13.0).
BARMAN_CLOUD = ChartPin("plugin-barman-cloud", "https://cloudnative-pg.github.io/charts", "0.7.0", "v0.13.0")
BARMAN_CLOUD_BARMAN_VERSION = "3.19.1"
# Strimzi: the operator chart 1.2.0 (strimzi/strimzi-kafka-operator helm-charts/helm3/strimzi-kafka-operator, whose
# Chart.yaml holds the placeholder 0.1.1 in the source tree; values.yaml defaultImageTag 1.2.0), published as an OCI
# chart (the project's install docs: oci://quay.io/strimzi-helm/strimzi-kafka-operator). Strimzi 1.x serves only
# kafka.strimzi.io/v1 (CHANGELOG.md @ 1.2.0, 1.0.0: "Remove the v1beta2 API").
STRIMZI_OPERATOR = ChartPin(
    "strimzi-kafka-operator", "oci://quay.io/strimzi-helm", "1.2.0", "1.2.0", placeholder="0.1.1"
)
# The newest Kafka Strimzi 1.2.0 runs, its default (kafka-versions.yaml @ 1.2.0: 4.3.1 `default: true`, metadata
# 4.3-IV0; 4.2.x and 4.3.0 are the other supported ones; the chart's templates/_kafka_image_map.tpl maps 4.3.1 to
# quay.io/strimzi/kafka:1.2.0-kafka-4.3.1). MSK's KAFKA_MAJOR check does not apply in-cluster.
STRIMZI_KAFKA_VERSION = "4.3.1"
STRIMZI_KAFKA_METADATA_VERSION = "4.3-IV0"
# Valkey, the Valkey project's own image (Docker Hub valkey/valkey, built from valkey-io/valkey-container): 8.1.5,
# the 8.1 line's patch in 8.1/debian/Dockerfile @ edf2582 (ENV VALKEY_VERSION 8.1.5, Debian trixie, BUILD_TLS=yes);
# 9.x exists (9.0/debian/Dockerfile @ e5c1d23: 9.0.0), 8.1 is the line whose directives the tests check on Redis 7.0
VALKEY_IMAGE = "docker.io/valkey/valkey:8.1.5"
VALKEY_UID = 999  # the image's `valkey` user and group (same Dockerfile: groupadd -r -g 999, useradd -u 999)

# -- client layer (components/client) ---------------------------------------------------------------------
# oauth2-proxy 10.7.0 (app v7.15.3, tag oauth2-proxy-10.7.0 of oauth2-proxy/manifests): Istio's external
# authorizer for the UIs without native OIDC (serving-observability-facts.md §9)
OAUTH2_PROXY = ChartPin("oauth2-proxy", "https://oauth2-proxy.github.io/manifests", "10.7.0", "7.15.3")
# JupyterHub (z2jh) 4.4.0: JupyterHub 5.5.0, KubeSpawner 7.0.0, OAuthenticator 17.4.0 in its hub image
# (jupyterhub/zero-to-jupyterhub-k8s images/hub/requirements.txt @ 4.4.0). Its source tree's Chart.yaml says
# 0.0.1-set.by.chartpress: chartpress writes the version and image tags into the published package only.
JUPYTERHUB = ChartPin(
    "jupyterhub", "https://hub.jupyter.org/helm-chart/", "4.4.0", "5.5.0", placeholder="0.0.1-set.by.chartpress"
)

# Serving runtime images set by the platform (the rest are the kserve-runtime-configs chart's pinned tags):
# MLServer 1.7.1 is the newest release (2025-06); Triton at the tag KServe v0.20's chart ships.
MLSERVER_TAG = "1.7.1"
# MLflow 3 models: the stock kserve-mlserver image bundles MLflow 2.19 (MLServer 1.7.1's poetry.lock), so the
# platform builds its own MLServer image, images/mlserver-mlflow, with MLflow at the tracking server's version;
# its requirements.txt holds every version, and a test keeps it equal to MLSERVER_TAG, MLFLOW.app_version and
# TRAINING_REQUIREMENTS' scikit-learn.
MLSERVER_MLFLOW_UID = 1000  # that image's numeric non-root USER (its Dockerfile)
# the mlflow chart's default image (burakince/mlflow: MLflow with psycopg2, boto3 and the GCS client), also
# run by the program's own migration Job
MLFLOW_REPOSITORY = "docker.io/burakince/mlflow"
MLFLOW_IMAGE = f"{MLFLOW_REPOSITORY}:{MLFLOW.app_version}"
MLFLOW_IMAGE_UID = 1001  # the image's non-root user (the mlflow chart's default runAsUser)
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:23.05-py3"

# Knative Serving per Kubernetes minor: each Knative release raises its floor (1.21 needs >= 1.33, 1.22 and
# 1.23 need >= 1.34; knative/pkg version.go). 1.21 is the line KServe v0.20 is tested with; on 1.34 and
# newer the supported 1.22 line. serving-observability-facts.md §3.
KNATIVE_SERVING_VERSIONS: dict[str, str] = {"1.33": "1.21.3", "1.34": "1.22.1", "1.35": "1.22.1"}
SERVING_MIN_KUBERNETES = "1.33"

ALL_CHARTS: tuple[ChartPin, ...] = (
    MLFLOW,
    FEAST_FEATURE_SERVER,
    AIRFLOW,
    KUBERAY_OPERATOR,
    KSERVE,
    KUBE_PROMETHEUS_STACK,
    GRAFANA,
    LOKI,
    ALLOY,
    DCGM_EXPORTER,
    PUSHGATEWAY,
    NVIDIA_DEVICE_PLUGIN,
    CLUSTER_AUTOSCALER,
    CERT_MANAGER,
    ISTIO_BASE,
    ISTIOD,
    ISTIO_GATEWAY,
    KNATIVE_OPERATOR,
    KSERVE_CRD,
    KSERVE_RUNTIME_CONFIGS,
    AWS_LOAD_BALANCER_CONTROLLER,
    FLINK_OPERATOR,
    OAUTH2_PROXY,
    JUPYTERHUB,
    CLOUDNATIVE_PG,
    BARMAN_CLOUD,
    STRIMZI_OPERATOR,
)

# Evidently ships no Helm chart: the platform runs its UI image directly, pinned by image tag.
EVIDENTLY_IMAGE = "evidently/evidently-service"
EVIDENTLY_VERSION = "0.7.23"
# The drift job's fetch step runs in the Airflow image the platform already pulls: it ships boto3 and
# google-cloud-storage (Airflow's amazon and google providers), which the Evidently image lacks.
# The image's Python, pinned: apache-airflow 3.1.7's `fab` and `google-auth` extras (the FAB auth manager the
# chart configures, which the platform's OIDC login uses, and Authlib) install only where Python is not 3.13
# (its package metadata), and the bare tag follows Airflow's default Python, which moves between releases.
AIRFLOW_PYTHON = "3.12"
AIRFLOW_TAG = f"{AIRFLOW.app_version}-python{AIRFLOW_PYTHON}"
AIRFLOW_IMAGE = f"docker.io/apache/airflow:{AIRFLOW_TAG}"
AIRFLOW_IMAGE_UID = 50000  # the image's `airflow` user

# The services whose `services.<name>.version` selects a chart version (the rest pin an image tag).
SERVICE_CHARTS: dict[str, ChartPin] = {
    "mlflow": MLFLOW,
    "feast": FEAST_FEATURE_SERVER,
    "airflow": AIRFLOW,
    "kuberay": KUBERAY_OPERATOR,
    "kserve": KSERVE,
    "prometheus": KUBE_PROMETHEUS_STACK,
    "grafana": GRAFANA,
    "loki": LOKI,
    "jupyterhub": JUPYTERHUB,
}


def pin_at(pin: ChartPin, version: str, app_version: str) -> ChartPin:
    """`pin` moved to another chart version a stack selected (config checks a key snapshot exists for it)."""
    return pin if version == pin.version else replace(pin, version=version, app_version=app_version)


SERVICE_DEFAULT_VERSIONS: dict[str, str] = {
    "mlflow": MLFLOW.version,
    "feast": FEAST_FEATURE_SERVER.version,
    "airflow": AIRFLOW.version,
    "kuberay": KUBERAY_OPERATOR.version,
    "kserve": KSERVE.version,
    "prometheus": KUBE_PROMETHEUS_STACK.version,
    "grafana": GRAFANA.version,
    "loki": LOKI.version,
    "evidently": EVIDENTLY_VERSION,
    "jupyterhub": JUPYTERHUB.version,
}

# -- pins per Kubernetes minor (AWS) --------------------------------------------------------------
# A Kubernetes minor is supported on EKS only if all of these are pinned for it; config validation rejects
# any other cluster.kubernetesVersion on aws with the list below. kube-proxy versions are the ones the EKS
# user guide lists per minor; when adding a minor, take the rest from
# `aws eks describe-addon-versions --kubernetes-version <minor> --addon-name <addon>`.
EKS_ADDON_VERSIONS: dict[str, dict[str, str]] = {
    "1.32": {
        "vpc-cni": "v1.20.3-eksbuild.1",
        "kube-proxy": "v1.32.9-eksbuild.2",
        "eks-pod-identity-agent": "v1.3.8-eksbuild.2",
        "coredns": "v1.11.4-eksbuild.24",
        "aws-ebs-csi-driver": "v1.50.1-eksbuild.1",
    },
    "1.33": {
        "vpc-cni": "v1.20.2-eksbuild.1",
        "kube-proxy": "v1.33.5-eksbuild.2",
        "eks-pod-identity-agent": "v1.3.8-eksbuild.2",
        "coredns": "v1.12.4-eksbuild.1",
        "aws-ebs-csi-driver": "v1.50.1-eksbuild.1",
    },
    "1.34": {
        "vpc-cni": "v1.21.1-eksbuild.1",
        "kube-proxy": "v1.34.1-eksbuild.2",
        "eks-pod-identity-agent": "v1.3.10-eksbuild.2",
        "coredns": "v1.12.4-eksbuild.1",
        "aws-ebs-csi-driver": "v1.54.0-eksbuild.1",
    },
    # as deployed on EKS 1.35 clusters (confirm: aws eks describe-addon-versions --kubernetes-version 1.35)
    "1.35": {
        "vpc-cni": "v1.21.1-eksbuild.3",
        "kube-proxy": "v1.35.0-eksbuild.2",
        "eks-pod-identity-agent": "v1.3.10-eksbuild.3",
        "coredns": "v1.13.2-eksbuild.1",
        "aws-ebs-csi-driver": "v1.57.1-eksbuild.1",
    },
}
# Cluster autoscaler image per Kubernetes minor (newest patch release of each cluster-autoscaler-1.<minor>).
CLUSTER_AUTOSCALER_IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler"
CLUSTER_AUTOSCALER_TAGS: dict[str, str] = {
    "1.32": "v1.32.7",
    "1.33": "v1.33.6",
    "1.34": "v1.34.5",
    "1.35": f"v{CLUSTER_AUTOSCALER.app_version}",  # the chart's own appVersion
}

# -- images run directly (no chart) -------------------------------------------------------------------
# Ray for the platform's RayCluster: the version KubeRay 1.7.0's own ray-cluster chart defaults to.
RAY_VERSION = "2.52.0"
RAY_IMAGE = f"docker.io/rayproject/ray:{RAY_VERSION}-py311"
RAY_GPU_IMAGE = f"docker.io/rayproject/ray:{RAY_VERSION}-py311-gpu"
# psql for the database bootstrap Job. A newer client talks to every supported server major (15-18).
POSTGRES_CLIENT_IMAGE = "docker.io/library/postgres:18.1-alpine"
POSTGRES_CLIENT_UID = 70  # the image's `postgres` user (alpine variant)
# The local stack's object store (components/storage/seaweedfs.py): SeaweedFS 4.44 (tag 4.44, 2026-08-22), as its
# release workflow publishes it (seaweedfs/seaweedfs .github/workflows/container_release_unified.yml @ 4.44: built
# to ghcr.io/chrislusf/seaweedfs:<tag>, copied to Docker Hub chrislusf/seaweedfs:<tag>). MinIO is not used: its
# community edition stopped publishing images and binaries in October 2025 (minio/minio#21647) and its
# repository went to maintenance-only, then archived.
SEAWEEDFS_IMAGE = "docker.io/chrislusf/seaweedfs:4.44"
SEAWEEDFS_UID = 1000  # the image's `seaweed` user and group (docker/Dockerfile.go_build @ 4.44: adduser -u 1000)

# -- Python libraries Kafka clients need (KafkaClientAuth.requirements; tests/venvs/kafka.txt) -----------------
# No platform image carries a Kafka client: the Airflow image's extras leave out apache-kafka (its Dockerfile's
# AIRFLOW_EXTRAS), the Ray image's base-deps bring boto3 and google-api-python-client only
# (docker/base-deps/requirements.in). confluent-kafka (librdkafka) is the client Airflow's Kafka provider is
# built on and the one AWS's signer README and Google's "Develop a Python producer application" use.
CONFLUENT_KAFKA = "confluent-kafka==2.16.1"
# MSK IAM for non-Java clients: a SigV4-presigned token for OAUTHBEARER (aws/aws-msk-iam-sasl-signer-python)
MSK_IAM_SIGNER = "aws-msk-iam-sasl-signer-python==1.0.2"
# Google's access token for Managed Kafka, from Application Default Credentials: on GKE google-auth finds the
# metadata server only through its `requests` transport (google/auth/_default.py _get_gce_credentials returns
# nothing when google.auth.transport.requests cannot be imported), hence the `requests` extra. The Airflow
# and Ray images carry google-auth and requests already: a range keeps their versions.
GOOGLE_AUTH = ("google-auth[requests]>=2,<3",)


# -- the reference training job's runtime_env (components/lifecycle/training.py) --------------------------
# Beyond the Ray image (which has pyarrow): the MLflow client at the tracking server's version and the
# scikit-learn the MLflow server image and the tests' venv carry (tests/venvs/mlflow.txt). skops: MLflow 3.15's
# sklearn flavor saves in the skops format by default (mlflow/sklearn/__init__.py log_model
# serialization_format=SERIALIZATION_FORMAT_SKOPS, `import skops.io`), which full mlflow requires but
# mlflow-skinny does not; 0.16.0 is the version mlflow 3.15.1 and the MLServer image's venv resolve to.
TRAINING_REQUIREMENTS = (f"mlflow-skinny=={MLFLOW.app_version}", "scikit-learn==1.9.1", "skops==0.16.0")
