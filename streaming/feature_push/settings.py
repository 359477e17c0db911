"""The job's settings, from the environment the FlinkDeployment's pod template sets (components/streaming/
job.py writes exactly these variables; a test keeps the two in step).

- KAFKA_BOOTSTRAP_SERVERS: the brokers (the data layer's KafkaEndpoint)
- KAFKA_PROPERTIES: JSON object of Kafka client properties: security.protocol, sasl.mechanism and the
  cloud's Java OAUTHBEARER login (KafkaClientAuth.jvm_sasl_properties), or for the in-cluster cluster's
  SCRAM login its PEM trust store
- KAFKA_SASL_JAAS_CONFIG (SCRAM only): the JAAS line with the workload's password, from its Secret, which
  becomes the sasl.jaas.config property
- FEATURE_PUSH: JSON object of the job's own settings (the fields of Settings below but the two above)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

BOOTSTRAP_ENV, KAFKA_PROPERTIES_ENV, SETTINGS_ENV = "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_PROPERTIES", "FEATURE_PUSH"
JAAS_ENV = "KAFKA_SASL_JAAS_CONFIG"


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str
    kafka_properties: dict[str, str]
    topic: str
    group_id: str
    push_url: str  # the feature server's base URL
    push_source: str  # the PushSource in feature_repo/
    push_to: str  # online | online_and_offline
    window_minutes: int
    out_of_orderness_seconds: int
    flush_seconds: int
    batch_rows: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        own = json.loads(env[SETTINGS_ENV])
        names = {f.name for f in fields(cls)} - {"bootstrap_servers", "kafka_properties"}
        unknown, missing = set(own) - names, names - set(own)
        if unknown or missing:
            raise ValueError(f"{SETTINGS_ENV}: unknown {sorted(unknown)}, missing {sorted(missing)}")
        kafka_properties = dict(json.loads(env.get(KAFKA_PROPERTIES_ENV, "{}")))
        if env.get(JAAS_ENV):
            kafka_properties["sasl.jaas.config"] = env[JAAS_ENV]
        return cls(bootstrap_servers=env[BOOTSTRAP_ENV], kafka_properties=kafka_properties, **own)
