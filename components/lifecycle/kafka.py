"""What a pod needs to be a Kafka client of the platform's cluster, made from the data layer's KafkaEndpoint
without knowing the cloud: environment variables that mlplatform_client/kafka_auth.py turns into a
confluent-kafka configuration with its login (the token callback of a managed cluster, or the SCRAM user and
the CA of the in-cluster one), and that package itself, shipped as a ConfigMap and mounted on PYTHONPATH (no
platform image carries it, and none carries a Kafka client: KAFKA_CLIENT_REQUIREMENTS says what to install, for
an image or a Ray job's runtime_env). With SCRAM, the workload's password is a Secret in its own namespace
(`credentials_secret`), read into KAFKA_SASL_PASSWORD; the environment names it, never holds it.

A workload's pods get all of it exactly when its WorkloadSpec grants it Kafka (`granted`), so an identity
without a Kafka grant is never handed brokers it cannot use, and one with a grant always has a client config.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.contracts import KafkaEndpoint, WorkloadSpec
from components.kube import config_map, opaque_secret

PACKAGE = "mlplatform_client"
PACKAGE_DIR = Path(__file__).resolve().parents[2] / PACKAGE
# what the token callbacks need of the package (its other modules wrap libraries Kafka clients lack)
PACKAGE_FILES = ("__init__.py", "kafka_auth.py")
PYTHON_DIR = "/opt/mlplatform/python"  # on PYTHONPATH; the package is mounted below it
PACKAGE_CONFIG_MAP = "mlplatform-client"
# the brokers for releases that must not wait for Kafka (see late_kafka_env)
KAFKA_CLIENT_CONFIG_MAP, KAFKA_BOOTSTRAP_KEY = "kafka-client", "bootstrap-servers"


# the Secret keys of a SCRAM user's credentials (credentials_secret): the password for Python clients, the
# whole JAAS line for Java clients (the Flink job reads it into sasl.jaas.config)
PASSWORD_KEY, JAAS_KEY = "password", "sasl.jaas.config"
SCRAM_LOGIN_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"


def granted(spec: WorkloadSpec, kafka: KafkaEndpoint | None) -> KafkaEndpoint | None:
    """The cluster as workload `spec` logs in to it, for a workload whose identity may use it (with SCRAM,
    its own user picked out); None otherwise."""
    if kafka is None or spec.kafka is None:
        return None
    return replace(kafka, auth=kafka.auth.for_workload(spec.key))


def jaas_config(username: str, password: str) -> str:
    """Java's SCRAM login line (Kafka's sasl.jaas.config for ScramLoginModule); the values are quoted, and
    the program's passwords are alphanumeric (components/secrets.generated_secret), so nothing needs escaping."""
    return f'{SCRAM_LOGIN_MODULE} required username="{username}" password="{password}";'


def credentials_secret(
    parent: pulumi.Resource, resource_name: str, kafka: KafkaEndpoint | None, ns: k8s.core.v1.Namespace
) -> k8s.core.v1.Secret | None:
    """The granted workload's SCRAM password in namespace `ns` (Secrets are namespaced), under the name the
    environment references (KafkaScramUser.secret_name); None for a token login, which has no password."""
    user = kafka.auth.user if kafka is not None else None
    if user is None:
        return None
    jaas = user.password.apply(lambda p: jaas_config(user.username, p))
    return opaque_secret(parent, resource_name, user.secret_name, ns, {PASSWORD_KEY: user.password, JAAS_KEY: jaas})


def secret_env(name: str, secret: str, key: str) -> dict[str, object]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def client_env(kafka: KafkaEndpoint) -> list[dict[str, object]]:
    """Everything but the brokers, the same on every cloud: the login the endpoint carries. A token login
    names its callback; SCRAM gives the user, the password from the workload's Secret and the CA's PEM
    (librdkafka's ssl.ca.pem, so no file is mounted)."""
    auth = kafka.auth
    login: list[dict[str, object]]
    if auth.scram is not None:
        if auth.user is None:
            raise ValueError("a SCRAM endpoint reaches pods only through granted(), which picks the user")
        login = [
            {"name": "KAFKA_SASL_USERNAME", "value": auth.user.username},
            secret_env("KAFKA_SASL_PASSWORD", auth.user.secret_name, PASSWORD_KEY),
            {"name": "KAFKA_SSL_CA_PEM", "value": auth.scram.ca_certificate_pem},
        ]
    else:
        login = [
            {"name": "KAFKA_OAUTH_CALLBACK", "value": auth.token_provider},
            {"name": "KAFKA_OAUTH_CONFIG", "value": auth.token_provider_config},
        ]
    return [
        {"name": "KAFKA_SECURITY_PROTOCOL", "value": auth.security_protocol},
        {"name": "KAFKA_SASL_MECHANISM", "value": auth.sasl_mechanism},
        *login,
        {"name": "KAFKA_CLIENT_REQUIREMENTS", "value": " ".join(auth.requirements)},
        {"name": "PYTHONPATH", "value": PYTHON_DIR},
    ]


def kafka_env(kafka: KafkaEndpoint | None) -> list[dict[str, object]]:
    """The brokers and the client settings, for pods created after Kafka exists."""
    if kafka is None:
        return []
    return [{"name": "KAFKA_BOOTSTRAP_SERVERS", "value": kafka.bootstrap_servers}, *client_env(kafka)]


def late_kafka_env(kafka: KafkaEndpoint | None) -> list[dict[str, object]]:
    """kafka_env for long-lived releases that must not wait for the brokers (MSK and Managed Kafka take
    25-30 minutes to create): the broker list comes from the `kafka-client` ConfigMap, which is made once
    Kafka exists, and is optional, so the release's pods start without it. Pods started after it exists,
    such as Airflow's task pods, get the brokers."""
    if kafka is None:
        return []
    ref = {"name": KAFKA_CLIENT_CONFIG_MAP, "key": KAFKA_BOOTSTRAP_KEY, "optional": True}
    return [{"name": "KAFKA_BOOTSTRAP_SERVERS", "valueFrom": {"configMapKeyRef": ref}}, *client_env(kafka)]


def package_files() -> dict[str, str]:
    """The token callbacks' package, file by file, as the ConfigMap carries it."""
    return {name: (PACKAGE_DIR / name).read_text() for name in PACKAGE_FILES}


def client_package(parent: pulumi.Resource, resource_name: str, ns: k8s.core.v1.Namespace) -> k8s.core.v1.ConfigMap:
    """The package in namespace `ns` (one per namespace: ConfigMap volumes are namespaced)."""
    return config_map(parent, resource_name, PACKAGE_CONFIG_MAP, ns, package_files())


def package_volume(
    package_config_map: pulumi.Input[str] | None,
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The package mounted read-only at PYTHON_DIR/mlplatform_client (the PYTHONPATH client_env sets)."""
    if package_config_map is None:
        return [], []
    return (
        [{"name": "mlplatform-client", "configMap": {"name": package_config_map}}],
        [{"name": "mlplatform-client", "mountPath": f"{PYTHON_DIR}/{PACKAGE}", "readOnly": True}],
    )
