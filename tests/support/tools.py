"""Command-line tools the tests run for real, from Debian packages that .ci/run installs."""

from __future__ import annotations

import os
import shutil

import pytest


def required_tool(command: str, package: str) -> str:
    """The tool's path; skips locally without it, fails under CI, where .ci/run must have installed it."""
    found = shutil.which(command)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{command} is missing: .ci/run installs Debian's {package} package")
        pytest.skip(f"{command} not installed (apt-get install {package})")
    return found
