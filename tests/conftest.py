"""Each stack is synthesized once per test session, through the same path as `python -m mlplatform plan`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mlplatform.plan.document import PlanDocument
from mlplatform.plan.synth import synthesize

GCP_TEST_CONFIG = {
    "mlplatform:profile": "dev",
    "mlplatform:cloud": "gcp",
    "mlplatform:region": "us-central1",
    "mlplatform:gcpProject": "mlplatform-test",
}

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
    """A GCP stack from config alone (the gcp-dev stack file arrives with the GCP issue)."""
    return _plan("gcp-test", GCP_TEST_CONFIG)
