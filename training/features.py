"""The training flow's feature step: `python -m features` in the Feast client image (images/feast-client),
started by the reference DAG (dags/training_flow.py) in `training` before the Ray job.

It joins a feature service's features onto an entity dataframe (label events: the entities' join keys, an
`event_timestamp` and the labels) with Feast's point-in-time join, and writes the result as one Parquet file
the Ray job reads. Each row gets, per feature view, the latest feature row whose event timestamp is at or
before the row's and whose created timestamp is too (`filter_by_created_timestamp`): a value ingested after
the event was not known then, so it must not reach training (feast-dev/feast v0.66.0,
sdk/python/feast/feature_store.py get_historical_features; infra/offline_stores/dask.py
_apply_created_timestamp_cutoff).

The store is the platform's: FeatureStore() reads the mounted feature_store.yaml (FEAST_FS_YAML_FILE_PATH)
and its SQL registry; the offline store (`file`, Dask) reads the feature views' Parquet sources in the
datasets bucket through fsspec, so the image needs s3fs (AWS) or gcsfs (GCP), which the feature-server image
lacks. The output goes through fsspec too, with the pod's workload identity (training: artifacts read-write).

The Parquet file's schema metadata carries what the training job logs to MLflow with the model: the feature
service, its feature references, the entity columns and the labels (TRAINING_SET_KEY).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

TIMESTAMP = "event_timestamp"  # Feast's default entity_df timestamp column name
TRAINING_SET_KEY = b"mlplatform.training_set"  # the Parquet schema metadata key train.py reads


def read_entities(uri: str) -> Any:
    """The entity dataframe from Parquet or CSV (by suffix), with a timezone-aware UTC event timestamp."""
    import pandas as pd

    frame = pd.read_csv(uri) if uri.endswith(".csv") else pd.read_parquet(uri)
    if TIMESTAMP not in frame.columns:
        raise SystemExit(f"{uri}: the entity dataframe needs an `{TIMESTAMP}` column; it has {list(frame.columns)}")
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True)
    return frame


def feature_refs(service: Any) -> list[str]:
    """`view:feature` for every feature the service selects, as Feast names them."""
    return [f"{p.name_to_use()}:{f.name}" for p in service.feature_view_projections for f in p.features]


def _check_filesystem(uri: str) -> None:
    """Fail with the fix, not fsspec's ImportError deep inside Dask, when the image cannot read the bucket."""
    if "://" not in uri:
        return
    import fsspec

    try:
        fsspec.get_filesystem_class(uri.split("://", 1)[0])
    except ImportError as missing:
        raise SystemExit(
            f"this image cannot read {uri} ({missing}): the feature step needs the Feast client image with s3fs "
            "or gcsfs (images/feast-client, or services.feast.clientImage; README, Feast)"
        ) from missing


def historical_features(entities: Any, service_name: str, store: Any | None = None) -> tuple[Any, dict[str, Any]]:
    """The point-in-time join and what it used, from the platform's registry."""
    from feast import FeatureStore

    store = store or FeatureStore()
    service = store.get_feature_service(service_name)
    for projection in service.feature_view_projections:
        source = store.get_feature_view(projection.name).batch_source
        _check_filesystem(getattr(source, "path", "") or "")
    refs = feature_refs(service)
    join = store.get_historical_features(entity_df=entities, features=service, filter_by_created_timestamp=True)
    frame = join.to_df()
    names = [ref.split(":", 1)[1] for ref in refs]
    keys = sorted({k for p in service.feature_view_projections for k in store.get_feature_view(p.name).join_keys})
    labels = [c for c in entities.columns if c not in {*keys, TIMESTAMP}]
    described = {
        "project": store.project,
        "feature_service": service_name,
        "features": refs,
        "columns": names,
        "entity_columns": keys,
        "timestamp": TIMESTAMP,
        "labels": labels,
        # the `file` store drops a label event for which no feature row is at or before it (dask.py
        # _filter_ttl keeps only earlier rows, then nothing is left to join), so rows <= label events
        "label_events": len(entities),
        "rows": len(frame),
        "rows_without_features": int(frame[names].isna().all(axis=1).sum()),
    }
    return frame.sort_values([TIMESTAMP, *keys]).reset_index(drop=True), described


def write(frame: Any, described: dict[str, Any], uri: str) -> None:
    """One Parquet file with the description in its schema metadata."""
    import fsspec
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = {**(table.schema.metadata or {}), TRAINING_SET_KEY: json.dumps(described).encode()}
    if "://" not in uri:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    _check_filesystem(uri)
    with fsspec.open(uri, "wb") as out:
        pq.write_table(table.replace_schema_metadata(metadata), out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", required=True, help="Entity dataframe: Parquet or CSV (s3://, gs:// or a path)")
    parser.add_argument("--feature-service", required=True, help="A feature service in the platform's registry")
    parser.add_argument("--output", required=True, help="Where the training set goes (.parquet)")
    args = parser.parse_args()
    frame, described = historical_features(read_entities(args.entities), args.feature_service)
    write(frame, described, args.output)
    print(f"training set: {json.dumps(described)} -> {args.output}")


if __name__ == "__main__":
    main()
