"""S3 and STS as the Barman Cloud plugin's sidecar meets them on EKS (IRSA), for tests/test_postgres_backups.py:
run with .venv-barman's python (moto, boto3), it serves moto on 127.0.0.1 with IAM authentication on, makes the
bucket and two roles that trust web identities, one with the IAM policy document in POLICY_FILE (the plan's own
role policy) and one with none, prints one JSON line ({"url", "role", "denied_role"}) and serves until stdin
closes.

    python moto_backups.py BUCKET POLICY_FILE

As in tests/support/moto_aws.py: AssumeRoleWithWebIdentity is let through unsigned (as AWS does: the token is the
credential), and the bucket is made with an administrator's keys from moto's first unauthenticated calls.
"""

from __future__ import annotations

import json
import sys

ADMIN_CALLS = 3  # create_user, put_user_policy, create_access_key


def main(bucket: str, policy_file: str) -> None:
    from moto import settings

    settings.INITIAL_NO_AUTH_ACTION_COUNT = ADMIN_CALLS
    import boto3
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.s3.responses import ACTION_MAP
    from moto.server import ThreadedMotoServer

    ACTION_MAP["BUCKET"]["HEAD"]["DEFAULT"] = "ListBucket"  # AWS: HeadBucket needs s3:ListBucket

    checked = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authenticate(self, iam_request_cls, resource="*"):  # type: ignore[no-untyped-def]
        if self._get_action() == "AssumeRoleWithWebIdentity":
            return None
        return checked(self, iam_request_cls, resource)

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate  # type: ignore[method-assign]

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    anonymous = {"endpoint_url": url, "region_name": "us-east-1"}
    iam = boto3.client("iam", aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap", **anonymous)
    iam.create_user(UserName="admin")
    admin_policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="admin", PolicyName="admin", PolicyDocument=json.dumps(admin_policy))
    key = iam.create_access_key(UserName="admin")["AccessKey"]
    admin = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"], **anonymous}
    iam = boto3.client("iam", **admin)
    boto3.client("s3", **admin).create_bucket(Bucket=bucket)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com"},
                "Action": "sts:AssumeRoleWithWebIdentity",
            }
        ],
    }
    with open(policy_file) as f:
        policy = f.read()
    roles = {}
    for role in ("postgres-backup", "nobody"):
        roles[role] = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="postgres-backup", PolicyName="backups", PolicyDocument=policy)
    print(json.dumps({"url": url, "role": roles["postgres-backup"], "denied_role": roles["nobody"]}), flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
