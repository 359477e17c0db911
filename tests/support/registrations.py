"""A custom resource's registration as the recording monitor keeps it (mlplatform/plan/mocks.py Registration),
for tests that add one to a plan by hand: no provider, dependencies or resource options."""

from __future__ import annotations

from typing import Any

from mlplatform.plan.mocks import Registration


def custom_registration(urn: str, type_: str, name: str, inputs: dict[str, Any], parent: str = "") -> Registration:
    return Registration(
        urn=urn,
        type=type_,
        name=name,
        parent=parent,
        provider="",
        custom=True,
        dependencies=[],
        protect=False,
        retain_on_delete=False,
        delete_before_replace=False,
        ignore_changes=[],
        inputs=inputs,
    )
