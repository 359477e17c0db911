"""The estimates `plan` prints: Kubernetes version support, idle cost, time to `up` from empty."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from mlplatform.config.profiles import DEFAULT_KUBERNETES_MINOR
from mlplatform.estimate.report import report, version_support
from mlplatform.estimate.support import TABLE_DATE, WINDOWS, Phase, support_status
from mlplatform.pins import EKS_ADDON_VERSIONS, KNATIVE_SERVING_VERSIONS, SERVING_MIN_KUBERNETES

STACKS = ["dev", "prod", "gcp-dev", "gcp-prod"]


def _minor(v: str) -> tuple[int, int]:
    major, minor = v.split(".")
    return int(major), int(minor)


def test_default_minor_stays_in_standard_support_for_90_days_on_both_clouds() -> None:
    for cloud in ("aws", "gcp"):
        window = WINDOWS[DEFAULT_KUBERNETES_MINOR][cloud]
        assert window.standard_end >= TABLE_DATE + timedelta(days=90), (cloud, window)


def test_default_minor_is_the_newest_with_pins_and_standard_support() -> None:
    """Newest minor the platform can deploy on both clouds (EKS add-on pins, Knative, serving floor) whose
    standard support lasts on both: no newer one qualifies, so the default is not left behind."""
    deployable = {
        m
        for m in WINDOWS
        if m in EKS_ADDON_VERSIONS and m in KNATIVE_SERVING_VERSIONS and _minor(m) >= _minor(SERVING_MIN_KUBERNETES)
    }
    in_standard = {
        m for m in deployable if all(support_status(c, m, TABLE_DATE).phase is Phase.STANDARD for c in ("aws", "gcp"))
    }
    assert max(in_standard, key=_minor) == DEFAULT_KUBERNETES_MINOR


def test_support_phases_and_the_warning() -> None:
    window = WINDOWS["1.33"]["aws"]
    assert support_status("aws", "1.33", window.standard_end).phase is Phase.STANDARD
    late = support_status("aws", "1.33", window.standard_end + timedelta(days=1))
    assert late.phase is Phase.EXTENDED and "WARNING" in late.describe() and "$365/month" in late.describe()
    assert support_status("aws", "1.33", window.extended_end + timedelta(days=1)).phase is Phase.UNSUPPORTED
    assert support_status("gcp", "1.20", TABLE_DATE).phase is Phase.UNKNOWN


@pytest.mark.parametrize("stack", STACKS)
def test_plan_reports_the_stacks_version_support(plan, stack: str) -> None:
    doc = plan(stack)
    status = version_support(doc, TABLE_DATE)
    assert status is not None and status.minor == DEFAULT_KUBERNETES_MINOR
    assert status.cloud == ("gcp" if stack.startswith("gcp") else "aws") and status.phase is Phase.STANDARD
    assert status.describe() in report(doc, TABLE_DATE)
    # the same plan a year on warns
    assert "WARNING" in report(doc, date(2027, 11, 1))
