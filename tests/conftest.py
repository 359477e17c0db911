"""Each stack is synthesized once per test session, through the same path as `python -m mlplatform plan`."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import pytest

from mlplatform.cli import default_charts
from mlplatform.manifests import RenderReport, render_plan
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.synth import PROJECT_DIR, synthesize

_cache: dict[str, PlanDocument] = {}


def _plan(stack: str, config_map: dict[str, Any] | None = None) -> PlanDocument:
    if stack not in _cache:
        _cache[stack] = synthesize(stack, config_map=config_map)
    return _cache[stack]


@pytest.fixture(scope="session")
def plan() -> Callable[[str], PlanDocument]:
    """plan("dev") / plan("prod"): the stack's plan document, synthesized once."""
    return _plan


@pytest.fixture(scope="session")
def dev() -> PlanDocument:
    return _plan("dev")


@pytest.fixture(scope="session")
def prod() -> PlanDocument:
    return _plan("prod")


@pytest.fixture(scope="session")
def gcp_dev() -> PlanDocument:
    return _plan("gcp-dev")


@pytest.fixture(scope="session")
def gcp_prod() -> PlanDocument:
    return _plan("gcp-prod")


@pytest.fixture(scope="session")
def local() -> PlanDocument:
    """Pulumi.local.yaml: `cloud: local` on a kind cluster (no cloud resource)."""
    return _plan("local")


_rendered: dict[str, RenderReport] = {}


@pytest.fixture(scope="session")
def rendered() -> Callable[[str], RenderReport]:
    """rendered("dev"): every Helm release of the stack's plan rendered from the pinned chart packages
    (`../shared/charts`, as `python -m mlplatform render` does) with the values Helm receives, and checked;
    once per session. Read-only: tests share the report. Skips when the packages are absent."""
    charts = default_charts(PROJECT_DIR)
    if charts is None:
        pytest.skip(f"no pinned chart packages in {PROJECT_DIR.parent / 'shared' / 'charts'}")
    pytest.importorskip("helm_python")

    def render(stack: str) -> RenderReport:
        if stack not in _rendered:
            _rendered[stack] = render_plan(_plan(stack), charts, None)
        return _rendered[stack]

    return render


# Real-process tests keep their servers' files under /tmp with short paths (Unix socket paths stay under 108
# bytes), made with tempfile.mkdtemp, which never removes them: a PostgreSQL data directory each, gigabytes
# after a few runs. Each test process removes the ones it made when its session ends, after every fixture
# has stopped its servers.
_made: list[str] = []
_mkdtemp = tempfile.mkdtemp


def _recording_mkdtemp(*args: Any, **kwargs: Any) -> str:
    path = _mkdtemp(*args, **kwargs)
    _made.append(path)
    return path


tempfile.mkdtemp = _recording_mkdtemp  # type: ignore[assignment]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for path in reversed(_made):
        shutil.rmtree(path, ignore_errors=True)
