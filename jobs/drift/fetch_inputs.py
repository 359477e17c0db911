"""Copies the drift job's two inputs from the datasets bucket into the pod's scratch volume.

Runs as the drift CronJob's init container in the Airflow image the platform already pins: it ships boto3
and google-cloud-storage (Airflow's amazon and google providers, which its remote logging uses), while the
Evidently image has no S3 or GCS client. Credentials are the pod's workload identity (IRSA on EKS,
Workload Identity on GKE), found by the SDKs' default chains; no key is ever passed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def fetch_s3(bucket: str, key: str, target: Path) -> None:
    import boto3

    boto3.client("s3").download_file(bucket, key, str(target))


def fetch_gcs(bucket: str, key: str, target: Path) -> None:
    from google.cloud import storage

    storage.Client().bucket(bucket).blob(key).download_to_filename(str(target))


FETCHERS = {"s3": fetch_s3, "gcs": fetch_gcs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", choices=sorted(FETCHERS), required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--into", type=Path, required=True, help="directory the files are written to")
    p.add_argument("objects", nargs="+", metavar="NAME=KEY", help="object KEY is written to --into/NAME")
    args = p.parse_args(argv)
    for pair in args.objects:
        name, _, key = pair.partition("=")
        if not name or not key or "/" in name:
            p.error(f"{pair!r}: expected NAME=KEY with a plain file NAME")
        target = args.into / name
        FETCHERS[args.store](args.bucket, key, target)
        print(f"{args.store}://{args.bucket}/{key} -> {target} ({target.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
