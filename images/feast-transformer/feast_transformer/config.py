"""The transformer's configuration: one JSON document in FEAST_TRANSFORMER_CONFIG, built by the platform from
an InferenceService's `serving.models[].transformer` (features, entity mapping, timeouts) and the feature
server's address. Parsed strictly: an unknown key, a wrong type or an empty list stops the process at start
(a crash loop KServe reports on the InferenceService) instead of a transformer that answers wrongly.

Standard library only, and no postponed annotations (its dataclasses need no sys.modules entry), so the
platform's tests can load this file by path (importlib spec_from_file_location) without the image's packages."""

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

ENV = "FEAST_TRANSFORMER_CONFIG"
# A Feast feature reference `<feature view>:<feature>` (feast/feature_view_projection.py, utils._get_features)
FEATURE_REF = re.compile(r"[A-Za-z_][A-Za-z0-9_]*:[A-Za-z_][A-Za-z0-9_]*")
# A V2 input's name (any string in the protocol; kept to what a DataFrame column and a URL carry plainly)
V2_INPUT = re.compile(r"[A-Za-z0-9_.\-]+")
JOIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# featureServer: a warm read takes milliseconds, but each feature-server worker's first read imports Feast's
# SQL online-store modules (feast v0.66.0 online_store.py _is_versioned_read_supported), 1-2 s measured, at
# start and after every --max-requests recycle; 3 s lets it through and still bounds a hung server
DEFAULT_TIMEOUTS = {"featureServer": 3.0, "predictor": 30.0}
KEYS = {"featureServerUrl", "features", "entities", "timeoutSeconds", "fullFeatureNames", "passEntities"}


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which key and why."""


@dataclass(frozen=True)
class Timeouts:
    feature_server: float  # seconds, for one /get-online-features call (connect included)
    predictor: float  # seconds, for one predictor call


@dataclass(frozen=True)
class Config:
    feature_server_url: str  # e.g. http://feast-feature-server.mlplatform.svc.cluster.local:80, no trailing /
    features: tuple[str, ...]  # Feast feature references, in the order the predictor gets them
    entities: Mapping[str, str]  # V2 input name -> Feast join key
    timeouts: Timeouts
    full_feature_names: bool = False  # columns named `<view>__<feature>` (Feast's full names), else `<feature>`
    pass_entities: bool = False  # also send the entity inputs to the predictor (off: a model sees features)

    def column(self, feature: str) -> str:
        """The predictor input (DataFrame column) a feature becomes: the name Feast's response gives it."""
        view, name = feature.split(":", 1)
        return f"{view}__{name}" if self.full_feature_names else name


def _timeout(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"timeoutSeconds.{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def parse(text: str) -> Config:
    """The configuration from its JSON text; ConfigError on anything it cannot use."""
    try:
        doc = json.loads(text)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{ENV} is not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise ConfigError(f"{ENV} must be a JSON object, got {type(doc).__name__}")
    unknown = sorted(set(doc) - KEYS)
    if unknown:
        raise ConfigError(f"unknown keys {unknown}; allowed: {sorted(KEYS)}")
    missing = sorted({"featureServerUrl", "features", "entities"} - set(doc))
    if missing:
        raise ConfigError(f"missing keys {missing}")

    url = doc["featureServerUrl"]
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"featureServerUrl must be an http(s) URL of the feature server, got {url!r}")

    features = doc["features"]
    if not isinstance(features, list) or not features:
        raise ConfigError("features must be a non-empty list of `<feature view>:<feature>`")
    bad = [f for f in features if not isinstance(f, str) or not FEATURE_REF.fullmatch(f)]
    if bad:
        raise ConfigError(f"features must be `<feature view>:<feature>`; not: {bad}")
    if len(set(features)) != len(features):
        raise ConfigError(f"features repeat: {sorted({f for f in features if features.count(f) > 1})}")

    entities = doc["entities"]
    if not isinstance(entities, dict) or not entities:
        raise ConfigError("entities must be a non-empty object {<V2 input name>: <Feast join key>}")
    for name, key in entities.items():
        if not V2_INPUT.fullmatch(name) or not isinstance(key, str) or not JOIN_KEY.fullmatch(key):
            raise ConfigError(f"entities: {name!r} -> {key!r} is not <V2 input name> -> <Feast join key>")
    if len(set(entities.values())) != len(entities):
        raise ConfigError("entities: two inputs map to the same join key")

    timeouts = doc.get("timeoutSeconds", DEFAULT_TIMEOUTS)
    if not isinstance(timeouts, dict) or set(timeouts) - set(DEFAULT_TIMEOUTS):
        raise ConfigError(f"timeoutSeconds must be an object with keys {sorted(DEFAULT_TIMEOUTS)}")
    merged = {**DEFAULT_TIMEOUTS, **timeouts}

    flags = {}
    for key in ("fullFeatureNames", "passEntities"):
        value = doc.get(key, False)
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        flags[key] = value

    config = Config(
        feature_server_url=url.rstrip("/"),
        features=tuple(features),
        entities=dict(entities),
        timeouts=Timeouts(
            _timeout("featureServer", merged["featureServer"]), _timeout("predictor", merged["predictor"])
        ),
        full_feature_names=flags["fullFeatureNames"],
        pass_entities=flags["passEntities"],
    )
    columns = [config.column(f) for f in config.features]
    clash = sorted({c for c in columns if columns.count(c) > 1} | (set(columns) & set(entities)))
    if clash:
        raise ConfigError(
            f"features give the predictor clashing input names {clash}: set fullFeatureNames: true or rename"
        )
    return config


def from_env(environ: Mapping[str, str]) -> Config:
    if ENV not in environ:
        raise ConfigError(f"{ENV} is not set: the transformer needs its features and entity mapping")
    return parse(environ[ENV])
