"""Each stack is synthesized once per test session, through the same path as `python -m mlplatform plan`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mlplatform.plan.document import PlanDocument
from mlplatform.plan.synth import synthesize

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
