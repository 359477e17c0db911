"""The reference training job: `python -m train` on the Ray cluster, submitted by the reference DAG
(dags/training_flow.py) with this directory as the job's working directory, which the Ray CLI packs in the
submitting pod and uploads through the job API.

It reads the training set the feature step (features.py) wrote: point-in-time features from Feast joined onto
label events, with the feature service and its feature references in the file's schema metadata. It trains a
small classifier on the earlier rows, validates on the later ones (a split by time: the model is judged on
events after those it learned from), and logs to MLflow (MLFLOW_TRACKING_URI, set in every Ray pod): the
metrics, the feature list (`features.json`, and the run and the registered version tagged with the feature
service and references, so serving knows which online features the model takes) and the model, registered
as a new version. Replace it with your own; keep the module runnable as `python -m <module>` from its
directory.

Where it runs is the DAG's choice: on a stack with GPU pools the job's entrypoint asks Ray for a GPU
(`--entrypoint-num-gpus`), so this process runs on a GPU worker with CUDA_VISIBLE_DEVICES set; the run
records what it got (tag `ray.gpus`). The reference model is scikit-learn and does not use it; a torch model
would (`torch.device("cuda")`), or a Ray Train trainer started from here with ScalingConfig(use_gpu=True).

pyarrow reads `s3://` and `gs://` with the default credential chains, so the Ray pods' workload identity
(artifacts read) is all it needs; mlflow and scikit-learn come from the job's runtime_env (the DAG's
`--runtime-env-json`).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

TRAINING_SET_KEY = b"mlplatform.training_set"  # features.py writes it
VALIDATION_SHARE = 0.25


def read_training_set(uri: str) -> tuple[Any, dict[str, Any]]:
    import pyarrow.parquet as pq

    table = pq.read_table(uri)
    described = (table.schema.metadata or {}).get(TRAINING_SET_KEY)
    if described is None:
        raise SystemExit(f"{uri} has no {TRAINING_SET_KEY.decode()} metadata: write it with the feature step")
    return table.to_pandas(), json.loads(described)


def train(training_set: str, model_name: str, run_date: str, label: str | None = None) -> str:
    """Trains, logs and registers; returns the registered version."""
    import mlflow
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score

    frame, described = read_training_set(training_set)
    columns, label = described["columns"], label or _only(described["labels"])
    known = frame.dropna(subset=columns).sort_values(described["timestamp"])  # no features known: not trainable
    cut = int(len(known) * (1 - VALIDATION_SHARE))
    fit, check = known.iloc[:cut], known.iloc[cut:]
    tags = {
        "feast.feature_service": described["feature_service"],
        "feast.features": ",".join(described["features"]),
        "ray.gpus": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
    }
    mlflow.set_experiment(model_name)
    with mlflow.start_run(run_name=f"{model_name}-{run_date}", tags=tags):
        model = LogisticRegression().fit(fit[columns], fit[label])
        mlflow.log_params(
            {
                "run_date": run_date,
                "training_set": training_set,
                "feature_service": described["feature_service"],
                "label": label,
                "rows": len(frame),
                "rows_without_features": len(frame) - len(known),
            }
        )
        mlflow.log_metrics(
            {
                "train_accuracy": float(accuracy_score(fit[label], model.predict(fit[columns]))),
                "validation_accuracy": float(accuracy_score(check[label], model.predict(check[columns]))),
                "validation_auc": float(roc_auc_score(check[label], model.predict_proba(check[columns])[:, 1])),
            }
        )
        mlflow.log_dict({**described, "label": label}, "features.json")
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name=model_name, input_example=fit[columns].head(3)
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    for key, value in tags.items():
        if key.startswith("feast."):
            client.set_model_version_tag(model_name, version, key, value)
    return version


def _only(labels: list[str]) -> str:
    if len(labels) != 1:
        raise SystemExit(f"the training set has labels {labels}: name one with --label")
    return labels[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--training-set", required=True, help="The feature step's Parquet (s3://, gs:// or a path)")
    parser.add_argument("--model-name", default="driver-activity")
    parser.add_argument("--run-date", required=True)
    parser.add_argument("--label", help="The label column (default: the entity dataframe's only label)")
    args = parser.parse_args()
    version = train(args.training_set, args.model_name, args.run_date, args.label)
    print(f"registered {args.model_name} version {version}")


if __name__ == "__main__":
    main()
