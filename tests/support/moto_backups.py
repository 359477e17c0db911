"""S3 and STS as the Barman Cloud plugin's sidecar meets them on EKS (IRSA), for tests/test_postgres_backups.py:
run with .venv-barman's python (moto, boto3), it serves moto on 127.0.0.1 with IAM authentication on, makes the
bucket and two roles that trust web identities, one with the IAM policy document in POLICY_FILE (the plan's own
role policy) and one with none, prints one JSON line ({"url", "role", "denied_role"}) and serves until stdin
closes.

    python moto_backups.py BUCKET POLICY_FILE

moto is started as for the Feast tests (tests/support/moto_aws.py start_irsa_moto: AssumeRoleWithWebIdentity
unsigned and HeadBucket authorized by s3:ListBucket, as in AWS), the bucket made with an administrator's keys.
"""

from __future__ import annotations

import json
import sys


def main(bucket: str, policy_file: str) -> None:
    import boto3
    from moto_aws import TRUST, start_irsa_moto  # beside this file: the script's directory is on sys.path

    server, url, admin = start_irsa_moto()
    iam = boto3.client("iam", **admin)
    boto3.client("s3", **admin).create_bucket(Bucket=bucket)
    with open(policy_file) as f:
        policy = f.read()
    roles = {}
    for role in ("postgres-backup", "nobody"):
        roles[role] = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    iam.put_role_policy(RoleName="postgres-backup", PolicyName="backups", PolicyDocument=policy)
    print(json.dumps({"url": url, "role": roles["postgres-backup"], "denied_role": roles["nobody"]}), flush=True)
    sys.stdin.read()
    server.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
