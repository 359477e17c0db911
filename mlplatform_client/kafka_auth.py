"""A Kafka client configuration for the platform's cluster, from the environment the platform gives every pod
whose workload is granted Kafka, with the login its cluster takes: the token callback of a managed cluster, or
the workload's SCRAM user and the CA of the in-cluster one.

    from confluent_kafka import Producer
    from mlplatform_client.kafka_auth import client_config

    producer = Producer(client_config())

The platform sets (components/lifecycle/kafka.py, from the data layer's KafkaClientAuth):
- KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL (SASL_SSL), KAFKA_SASL_MECHANISM (OAUTHBEARER or
  SCRAM-SHA-512);
- SCRAM (in-cluster Kafka): KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD (from the workload's Secret) and
  KAFKA_SSL_CA_PEM, the CA the brokers' certificate chains to (librdkafka's `ssl.ca.pem`; it verifies the
  broker's host name by default, ssl.endpoint.identification.algorithm https);
- KAFKA_OAUTH_CALLBACK: "module:function", the confluent-kafka `oauth_cb` that makes the token
  (`msk_iam_token` or `google_token` below), and KAFKA_OAUTH_CONFIG, librdkafka's `sasl.oauthbearer.config`,
  which librdkafka hands the callback as its argument;
- KAFKA_CLIENT_REQUIREMENTS: the pip requirements of the client and the callback (for an image or a Ray
  job's runtime_env), and PYTHONPATH with this package mounted on it.

The callbacks import their cloud's library when called, so this module itself needs nothing but the
standard library. confluent-kafka calls `oauth_cb(config)` for the first token and again before it expires,
and takes `(token, expiry in seconds since the epoch)` back (confluent-kafka's docs, "oauth_cb").
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

TokenCallback = Callable[[str], tuple[str, float]]


def client_config(env: Mapping[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    """confluent-kafka's configuration dict: the brokers, TLS and SASL settings and the token callback, plus
    what the caller adds (`group.id`, ...). Dotted librdkafka keys go in through `overrides` as a dict:
    `client_config(**{"group.id": "g"})`."""
    env = os.environ if env is None else env
    config: dict[str, Any] = {
        "bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"],
        "security.protocol": env["KAFKA_SECURITY_PROTOCOL"],
        "sasl.mechanism": env["KAFKA_SASL_MECHANISM"],
    }
    if env.get("KAFKA_SASL_USERNAME"):
        config["sasl.username"] = env["KAFKA_SASL_USERNAME"]
        config["sasl.password"] = env["KAFKA_SASL_PASSWORD"]
    if env.get("KAFKA_SSL_CA_PEM"):
        config["ssl.ca.pem"] = env["KAFKA_SSL_CA_PEM"]
    provider = env.get("KAFKA_OAUTH_CALLBACK")
    if provider:
        config["oauth_cb"] = token_callback(provider)
        if env.get("KAFKA_OAUTH_CONFIG"):
            config["sasl.oauthbearer.config"] = env["KAFKA_OAUTH_CONFIG"]
    return {**config, **overrides}


def token_callback(reference: str) -> TokenCallback:
    """The callable a "module:function" reference names."""
    module, _, name = reference.partition(":")
    if not module or not name:
        raise ValueError(f"a token provider is 'module:function'; got {reference!r}")
    return getattr(importlib.import_module(module), name)


def _options(oauth_config: str) -> dict[str, str]:
    """librdkafka's sasl.oauthbearer.config: space-separated key=value pairs."""
    return dict(pair.split("=", 1) for pair in oauth_config.split())


# -- Amazon MSK (IAM access control) --------------------------------------------------------------------


def msk_iam_token(oauth_config: str) -> tuple[str, float]:
    """MSK IAM for non-Java clients: a SigV4-presigned `kafka-cluster:Connect` request for the cluster's
    region, base64url-encoded, signed with the pod's credentials from botocore's default chain (IRSA's web
    identity token). aws-msk-iam-sasl-signer-python returns the expiry in milliseconds (its README's
    confluent-kafka example divides by 1000, as here)."""
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

    token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(_options(oauth_config)["region"])
    return token, expiry_ms / 1000


# -- Google Cloud Managed Service for Apache Kafka -------------------------------------------------------

_CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
# The token Managed Kafka accepts: a JWT-shaped triple whose header names Google's access token as the
# "algorithm" and whose third part is that access token (googleapis/managedkafka, kafka-auth-local-server/
# kafka_gcp_credentials_server.py and kafka-java-auth GcpLoginCallbackHandler.java).
_HEADER = json.dumps({"typ": "JWT", "alg": "GOOG_OAUTH2_TOKEN"})
_google: dict[str, Any] = {}
_google_lock = threading.Lock()


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def google_token(oauth_config: str) -> tuple[str, float]:
    """Managed Kafka's OAUTHBEARER token from Application Default Credentials (on GKE, the pod's Google
    service account through Workload Identity). The subject is the service account's email, the principal
    Kafka ACLs name (`User:<email>`). GKE's metadata credentials report the email as "default" until
    refreshed (google-auth compute_engine.Credentials), so the token is refreshed before it is read."""
    import google.auth
    import google.auth.transport.requests

    with _google_lock:
        if "credentials" not in _google:
            _google["credentials"], _ = google.auth.default(scopes=[_CLOUD_PLATFORM])
            _google["request"] = google.auth.transport.requests.Request()
        credentials = _google["credentials"]
        if not credentials.valid:
            credentials.refresh(_google["request"])
        subject = getattr(credentials, "service_account_email", None)
        if not subject or subject == "default":
            raise RuntimeError(f"no service account email in {type(credentials).__name__}: Kafka needs one")
        expiry = credentials.expiry.replace(tzinfo=UTC).timestamp()
        claims = {"exp": expiry, "iss": "Google", "iat": datetime.now(UTC).timestamp(), "sub": subject}
        token = ".".join((_b64(_HEADER), _b64(json.dumps(claims)), _b64(credentials.token)))
        return token, expiry
