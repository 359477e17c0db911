"""Kubernetes minor support windows on EKS and GKE, as of TABLE_DATE.

Past standard support a cluster still runs, at a price: EKS bills extended support at $0.60 per cluster
hour instead of $0.10 ($438 instead of $73 a month); GKE keeps a minor past standard support only on the
Extended channel, which also bills an extended-support fee, and upgrades clusters on the other channels.

Sources (read 2026-11-28):
- EKS: https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html (14 months standard, 12
  extended) and its release calendar, as mirrored by https://endoflife.date/amazon-eks.
- GKE: https://cloud.google.com/kubernetes-engine/docs/release-schedule (end of standard support, the
  "Maintenance Support" end at https://endoflife.date/google-kubernetes-engine); extended support ends 24
  months after the minor reached the Regular channel
  (https://cloud.google.com/kubernetes-engine/versioning#extended-support).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

TABLE_DATE = date(2026, 11, 28)


@dataclass(frozen=True)
class Window:
    standard_end: date
    extended_end: date


# minor -> cloud -> window
WINDOWS: dict[str, dict[str, Window]] = {
    "1.32": {
        "aws": Window(date(2026, 3, 23), date(2027, 3, 23)),
        "gcp": Window(date(2026, 4, 11), date(2027, 2, 11)),
    },
    "1.33": {
        "aws": Window(date(2026, 7, 29), date(2027, 7, 29)),
        "gcp": Window(date(2026, 8, 3), date(2027, 6, 3)),
    },
    "1.34": {
        "aws": Window(date(2026, 12, 2), date(2027, 12, 2)),
        "gcp": Window(date(2026, 10, 1), date(2027, 9, 30)),
    },
    "1.35": {
        "aws": Window(date(2027, 3, 27), date(2028, 3, 27)),
        "gcp": Window(date(2027, 4, 11), date(2028, 2, 11)),
    },
}

# what the control plane costs per hour in each phase (EKS pricing page; GKE pricing page: the cluster
# management fee, and the extended-period fee of the Extended channel)
CONTROL_PLANE_HOURLY: dict[str, dict[str, float]] = {
    "aws": {"standard": 0.10, "extended": 0.60},
    "gcp": {"standard": 0.10, "extended": 0.60},
}


class Phase(StrEnum):
    STANDARD = "standard"
    EXTENDED = "extended"
    UNSUPPORTED = "unsupported"
    UNKNOWN = "unknown"  # a minor the table does not list


@dataclass(frozen=True)
class SupportStatus:
    cloud: str
    minor: str
    on: date
    phase: Phase
    ends: date | None  # the end of the current phase

    @property
    def days_left(self) -> int | None:
        return (self.ends - self.on).days if self.ends else None

    def describe(self) -> str:
        service = {"aws": "EKS", "gcp": "GKE"}[self.cloud]
        if self.phase is Phase.UNKNOWN:
            return f"Kubernetes {self.minor} on {service}: not in the support table (mlplatform/estimate/support.py)"
        if self.phase is Phase.UNSUPPORTED:
            return f"Kubernetes {self.minor} on {service}: out of support since {self.ends}; the cloud upgrades it"
        line = f"Kubernetes {self.minor} on {service}: {self.phase} support until {self.ends} ({self.days_left} days)"
        if self.phase is Phase.EXTENDED:
            fees = CONTROL_PLANE_HOURLY[self.cloud]
            extra = (fees["extended"] - fees["standard"]) * 730
            line += f"; WARNING: extended support bills about ${extra:.0f}/month more per cluster: upgrade the minor"
        return line


def support_status(cloud: str, minor: str, on: date) -> SupportStatus:
    window = WINDOWS.get(minor, {}).get(cloud)
    if window is None:
        return SupportStatus(cloud, minor, on, Phase.UNKNOWN, None)
    if on <= window.standard_end:
        return SupportStatus(cloud, minor, on, Phase.STANDARD, window.standard_end)
    if on <= window.extended_end:
        return SupportStatus(cloud, minor, on, Phase.EXTENDED, window.extended_end)
    return SupportStatus(cloud, minor, on, Phase.UNSUPPORTED, window.extended_end)
