"""The Airflow image's tag, as the chart's pods and the program's own Jobs run it: the Python the platform
pins (mlplatform/pins.py AIRFLOW_PYTHON) must be one the pinned apache-airflow installs its FAB auth manager
for, since the OIDC login (components/lifecycle/airflow_oidc.py) is FAB's. Read from the package's own
metadata at the pinned version (.venv-airflow), not from a copy."""

from __future__ import annotations

import json
import subprocess

import pytest

from components.lifecycle.airflow import airflow_tag
from mlplatform.pins import AIRFLOW, AIRFLOW_IMAGE, AIRFLOW_PYTHON
from tests.support.graph import helm_release
from tests.support.tools import venv_python

REQUIRES = "import json; from importlib.metadata import requires; print(json.dumps(requires('apache-airflow')))"


def test_every_airflow_pod_runs_the_same_tag(dev) -> None:
    values = helm_release(dev, "airflow").inputs["values"]
    assert values["defaultAirflowTag"] == airflow_tag(AIRFLOW) and values["airflowVersion"] == AIRFLOW.app_version
    assert AIRFLOW_IMAGE.endswith(f":{values['defaultAirflowTag']}")  # the migration Job and the drift job


@pytest.mark.slow
def test_the_pinned_python_gets_the_fab_auth_manager_and_authlib() -> None:
    from packaging.requirements import Requirement

    python = venv_python(".venv-airflow", "tests/venvs/airflow.txt")
    done = subprocess.run([python, "-c", REQUIRES], capture_output=True, text=True, timeout=60, check=True)
    environment = {"python_version": AIRFLOW_PYTHON, "python_full_version": f"{AIRFLOW_PYTHON}.0"}
    wanted = {"apache-airflow-providers-fab", "authlib"}
    for extra in ("fab", "google-auth"):  # both in the image's AIRFLOW_EXTRAS
        got = {
            r.name.lower()
            for r in map(Requirement, json.loads(done.stdout))
            if r.marker is not None and r.marker.evaluate(environment | {"extra": extra})
        }
        assert "apache-airflow-providers-fab" in got, (extra, got)
    assert wanted <= {
        r.name.lower()
        for r in map(Requirement, json.loads(done.stdout))
        if r.marker is not None and r.marker.evaluate(environment | {"extra": "google-auth"})
    }
    # and the reason to pin: on 3.13 the extra brings no FAB
    on_313 = {"python_version": "3.13", "python_full_version": "3.13.0", "extra": "fab"}
    assert not any(
        r.name.lower() == "apache-airflow-providers-fab" and r.marker is not None and r.marker.evaluate(on_313)
        for r in map(Requirement, json.loads(done.stdout))
    )
