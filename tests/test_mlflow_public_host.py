"""MLflow behind the gateway: the pinned MLflow's own Host and Origin checks (mlflow/server/security_utils.py
and fastapi_security.py @ 3.15.1), run in `.venv-mlflow` on the values the plan gives the chart, as the
chart passes them (MLFLOW_SERVER_ALLOWED_HOSTS / MLFLOW_SERVER_CORS_ALLOWED_ORIGINS, comma-joined:
templates/configmap.yaml @ mlflow chart 1.11.5). The gateway route passes the browser's Host on, and a
browser sends Origin on the UI's own POSTs."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.support.graph import helm_release
from tests.support.tools import venv_python
from tests.test_client_exposure import DOMAIN, exposed  # noqa: F401  (the fixture)

CHECK = """
import json, sys
from mlflow.server import security_utils as s
hosts, origins = s.get_allowed_hosts_from_env(), s.get_allowed_origins_from_env()
probe = json.loads(sys.argv[1])
print(json.dumps({
    "hosts": {h: s.is_allowed_host_header(hosts, h) for h in probe["hosts"]},
    "blocked": {o: s.should_block_cors_request(o, "POST", origins) for o in probe["origins"]},
}))
"""


def mlflow_checks(values: dict, hosts: list[str], origins: list[str]) -> dict:
    python = venv_python(".venv-mlflow", "tests/venvs/mlflow.txt")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MLFLOW_SERVER_ALLOWED_HOSTS": ",".join(values["serverAllowedHosts"]),
        "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS": ",".join(values.get("corsAllowedOrigins") or []),
    }
    done = subprocess.run(
        [python, "-c", CHECK, json.dumps({"hosts": hosts, "origins": origins})],
        capture_output=True, text=True, timeout=120, env=env, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("stack", ["dev", "gcp-dev"])
def test_mlflow_answers_its_public_host_and_its_own_origin(exposed, stack: str) -> None:  # noqa: F811
    values = helm_release(exposed(stack), "mlflow").inputs["values"]
    public = f"mlflow.{DOMAIN}"
    result = mlflow_checks(values, [public, f"{public}:443", "mlflow.mlplatform", "evil.example.org"],
                           [f"https://{public}", "https://evil.example.org"])  # fmt: skip
    assert result["hosts"] == {public: True, f"{public}:443": True, "mlflow.mlplatform": True,
                               "evil.example.org": False}  # fmt: skip
    assert result["blocked"] == {f"https://{public}": False, "https://evil.example.org": True}


@pytest.mark.slow
def test_without_a_domain_mlflow_knows_no_public_host(dev) -> None:
    values = helm_release(dev, "mlflow").inputs["values"]
    result = mlflow_checks(values, [f"mlflow.{DOMAIN}", "mlflow.mlplatform.svc"], [f"https://mlflow.{DOMAIN}"])
    assert result["hosts"] == {f"mlflow.{DOMAIN}": False, "mlflow.mlplatform.svc": True}
    assert result["blocked"] == {f"https://mlflow.{DOMAIN}": True}
