"""What a Helm resource installs: its pinned chart rendered with the values Helm receives, through the
same code as `python -m mlplatform render` (mlplatform/manifests.py), so the policies see the pods the
cluster would run."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from policy.view import ChartRenderer, Resource, plain


def chart_renderer(charts_dir: Path | None, *, pull: bool = False) -> ChartRenderer | None:
    """A renderer reading pinned packages from `charts_dir`; with no directory, one pulling each chart from
    its pinned repository when `pull` (online, as under the CLI), else None (nothing rendered)."""
    if charts_dir is None and not pull:
        return None
    cache = Path(tempfile.mkdtemp(prefix="mlplatform-policy-charts-")) if charts_dir is None else None

    def render(res: Resource) -> list[dict[str, Any]]:
        from mlplatform.helm_apply import applied
        from mlplatform.manifests import find_chart, pull_chart, render_release
        from mlplatform.plan.mocks import Registration

        inputs = plain(res.props)
        chart, version = str(inputs["chart"]), str(inputs["version"])
        if charts_dir is not None:
            source = find_chart(charts_dir, chart, version)
        else:
            repo = str((inputs.get("repositoryOpts") or {}).get("repo", ""))
            source = pull_chart(chart, version, repo, cast(Path, cache))
        reg = cast(Registration, SimpleNamespace(name=res.name, type=res.type, inputs=inputs))
        return applied(res.type, render_release(reg, source).objects)

    return render
