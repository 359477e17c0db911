"""S3 and STS as an EKS pod with IRSA meets them, for the Feast tests: run with .venv-feast's python (moto
and boto3 live there), it serves moto on 127.0.0.1 with IAM authentication on, so a request is served only
when signed with credentials moto issued and allowed by their principal's policies, then prints one JSON
line ({"url", "role", "denied_role"}) and serves until stdin closes.

    python moto_aws.py BUCKET KEY=FILE...

- `role` may read BUCKET (s3:GetObject, s3:ListBucket), as the Feast identity may; `denied_role` may read
  nothing. Both trust web identities, as the platform's IRSA roles do.
- AssumeRoleWithWebIdentity is unsigned in AWS (the token is the credential: STS API reference, "Calling
  AssumeRoleWithWebIdentity does not require the use of AWS security credentials"); moto 5.2's
  authentication demands a signature on every call (core/authorization.py), so that one action is let
  through unsigned here, as AWS does.
- The objects are put with an administrator's keys made in moto's first unauthenticated calls
  (INITIAL_NO_AUTH_ACTION_COUNT).
"""

from __future__ import annotations

import json
import sys

ADMIN_CALLS = 3  # create_user, put_user_policy, create_access_key
READ = ["s3:GetObject", "s3:ListBucket"]


TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com"},
            "Action": "sts:AssumeRoleWithWebIdentity",
        }
    ],
}


def start_irsa_moto() -> tuple[object, str, dict[str, str]]:
    """moto on 127.0.0.1 with IAM authentication on, as IRSA meets AWS: (the server, its URL, an administrator's
    client keyword arguments). AssumeRoleWithWebIdentity goes through unsigned, as in AWS; HeadBucket is
    authorized by s3:ListBucket, as in AWS (S3 API reference, HeadBucket: "you must have the s3:ListBucket
    permission"; moto 5.2 asks for a non-existent s3:HeadBucket)."""
    from moto import settings

    settings.INITIAL_NO_AUTH_ACTION_COUNT = ADMIN_CALLS
    import boto3
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.s3.responses import ACTION_MAP
    from moto.server import ThreadedMotoServer

    ACTION_MAP["BUCKET"]["HEAD"]["DEFAULT"] = "ListBucket"
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
    return server, url, admin


def main(bucket: str, objects: list[str]) -> None:
    import boto3

    server, url, admin = start_irsa_moto()
    iam = boto3.client("iam", **admin)
    s3 = boto3.client("s3", **admin)
    s3.create_bucket(Bucket=bucket)
    for pair in objects:
        name, _, path = pair.partition("=")
        with open(path, "rb") as f:
            s3.put_object(Bucket=bucket, Key=name, Body=f.read())
    roles = {}
    for role, actions in (("feast", READ), ("nobody", [])):
        roles[role] = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        if actions:
            resources = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
            statement = {"Effect": "Allow", "Action": actions, "Resource": resources}
            policy = {"Version": "2012-10-17", "Statement": [statement]}
            iam.put_role_policy(RoleName=role, PolicyName="datasets", PolicyDocument=json.dumps(policy))
    print(json.dumps({"url": url, "role": roles["feast"], "denied_role": roles["nobody"]}), flush=True)
    sys.stdin.read()
    server.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
