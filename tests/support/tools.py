"""Command-line tools the tests run for real, from Debian packages that .ci/run installs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def required_tool(command: str, package: str) -> str:
    """The tool's path; skips locally without it, fails under CI, where .ci/run must have installed it."""
    found = shutil.which(command)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{command} is missing: .ci/run installs Debian's {package} package")
        pytest.skip(f"{command} not installed (apt-get install {package})")
    return found


def venv_python(directory: str, requirements: str) -> str:
    """The python of a project venv that .ci/run makes for a tool whose pins clash with the program's (e.g.
    `.venv-mlflow` from tests/venvs/mlflow.txt); skips locally without it, fails under CI."""
    root = Path(__file__).resolve().parents[2]
    python = root / directory / "bin" / "python"
    if not python.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{python} is missing: .ci/run makes it from {requirements}")
        make = f"python3 -m venv {directory} && {directory}/bin/pip install -r {requirements}"
        pytest.skip(f"no venv at {python} ({make})")
    return str(python)
