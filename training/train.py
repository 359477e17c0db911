"""The reference training job: `python -m train` on the Ray cluster, submitted by the reference DAG
(dags/training_flow.py) with this directory as the job's working directory, which the Ray CLI packs in the
submitting pod and uploads through the job API.

It trains a small classifier on the example feature data in the datasets bucket (the rows the Feast example
feature view reads), logs the run and the model to MLflow (MLFLOW_TRACKING_URI, set in every Ray pod) and
registers a new version of the model. Replace it with your own; keep the module runnable as `python -m
<module>` from its directory.

pyarrow reads `s3://` and `gs://` with the default credential chains, so the Ray pods' workload identity
(datasets read) is all it needs; mlflow and scikit-learn come from the job's runtime_env (the DAG's
`--runtime-env-json`).
"""

from __future__ import annotations

import argparse

FEATURES = ["conv_rate", "acc_rate"]
TARGET = "avg_daily_trips"


def train(dataset: str, model_name: str, run_date: str) -> str:
    """Trains, logs and registers; returns the registered version."""
    import mlflow
    import pyarrow.parquet as pq
    from sklearn.linear_model import LogisticRegression

    frame = pq.read_table(dataset).to_pandas()
    features = frame[FEATURES]
    busy = (frame[TARGET] > frame[TARGET].median()).astype(int)  # a busy driver-hour
    mlflow.set_experiment(model_name)
    with mlflow.start_run(run_name=f"{model_name}-{run_date}"):
        model = LogisticRegression().fit(features, busy)
        mlflow.log_params({"run_date": run_date, "rows": len(frame), "dataset": dataset})
        mlflow.log_metric("train_accuracy", float(model.score(features, busy)))
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name=model_name, input_example=features.head(3)
        )
    return str(info.registered_model_version)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="Parquet file or directory (s3://, gs:// or a path)")
    parser.add_argument("--model-name", default="driver-activity")
    parser.add_argument("--run-date", required=True)
    args = parser.parse_args()
    print(f"registered {args.model_name} version {train(args.dataset, args.model_name, args.run_date)}")


if __name__ == "__main__":
    main()
