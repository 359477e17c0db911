"""`python -m mlplatform plan|diff|render|chart-keys|comment`: the offline plan, the credential-free preview diff,
the charts rendered with the plan's values and checked, and the regeneration of the values-key snapshots."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import date
from pathlib import Path

from components.client.configuration import write_client_files
from mlplatform.chartkeys import build_snapshot, upstream_mismatch, write_snapshot
from mlplatform.config import ConfigError, read_stack_file
from mlplatform.estimate.report import report
from mlplatform.estimate.requests import render_releases
from mlplatform.manifests import render_plan
from mlplatform.pins import ALL_CHARTS
from mlplatform.plan import comment_cli
from mlplatform.plan.diff import diff_plans, render_diff
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.render import render
from mlplatform.plan.synth import PROJECT_DIR, synthesize
from policy.engine import evaluate, stack_from_plan
from policy.engine import report as policy_report

EXIT_CONFIG = 2
EXIT_POLICY = 1  # `plan`: a mandatory policy violation


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlplatform", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="synthesize a stack offline; print its tree and write its JSON plan")
    plan.add_argument("--stack", default="dev", help="stack name: reads Pulumi.<stack>.yaml (default: dev)")
    plan.add_argument("--out", type=Path, help="where to write the JSON plan (default: plans/<stack>.json)")
    plan.add_argument("--summary", action="store_true", help="counts per layer and type instead of the tree")
    plan.add_argument(
        "--clients",
        type=Path,
        help="where to write <stack>.env and <stack>/feature_store.yaml for clients (default: clients/)",
    )
    plan.add_argument(
        "--policy-out",
        type=Path,
        help="also write the policy findings as JSON (a list of {rule, mandatory, urn, resource, message}), "
        "for the pull-request comment",
    )
    plan.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    diff = sub.add_parser("diff", help="compare two plans (JSON files, or stack names to synthesize)")
    diff.add_argument("old", help="plan JSON path or stack name")
    diff.add_argument("new", help="plan JSON path or stack name")
    diff.add_argument(
        "--ignore-parents",
        action="store_true",
        help="compare cloud and Kubernetes objects by type and logical name wherever they sit; list renames",
    )
    diff.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    rend = sub.add_parser(
        "render", help="render every Helm release of a stack with the plan's values; check pods and policies"
    )
    rend.add_argument("--stack", default="dev", help="stack name (default: dev)")
    rend.add_argument(
        "--charts",
        type=Path,
        help="directory of chart sources (<chart>-<version>.tgz, <chart>-<version>/ or <chart>/); "
        "default: ../shared/charts beside the project when it exists, else pull from the pinned repositories",
    )
    rend.add_argument("--out", type=Path, help="where to write the manifests (default: rendered/<stack>/)")
    rend.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    keys = sub.add_parser("chart-keys", help="regenerate mlplatform/chart_keys/ from upstream chart directories")
    keys.add_argument(
        "--from",
        dest="upstream",
        type=Path,
        default=PROJECT_DIR.parent / "shared" / "upstream" / "charts",
        help="directory of <chart>/{Chart.yaml,values.yaml[,values.schema.json]} (default: ../shared/upstream/charts)",
    )
    comment_cli.add_parser(sub)
    return p


def chart_keys(upstream: Path) -> int:
    """Writes a snapshot for every pinned chart whose upstream copy has the pinned version."""
    for pin in ALL_CHARTS:
        chart_dir = upstream / pin.source_dir
        reason = upstream_mismatch(chart_dir, pin.version, pin.placeholder)
        if reason:
            print(f"skip: {reason}")
            continue
        app_version = pin.app_version if pin.placeholder else None
        print(f"wrote {write_snapshot(build_snapshot(chart_dir, pin.chart, pin.version, app_version))}")
    return 0


def default_charts(project_dir: Path) -> Path | None:
    """The pinned Helm packages shared beside the project (`../shared/charts`), if present."""
    shared = project_dir.parent / "shared" / "charts"
    return shared if shared.is_dir() else None


def render_stack(stack: str, charts: Path | None, out: Path | None, project_dir: Path) -> int:
    """Exit 1 when a chart is missing or any rendered pod breaks a check, 0 when all pass."""
    doc = synthesize(stack, project_dir)
    out = out or project_dir / "rendered" / stack
    report = render_plan(doc, charts or default_charts(project_dir), out)
    for r in report.releases:
        print(f"rendered {r.release} ({r.chart} {r.version}) in {r.namespace}: {len(r.objects)} objects")
    for m in report.missing:
        print(f"missing chart: {m}")
    for v, reason in report.accepted:
        print(f"accepted: {v} ({reason})")
    for v in report.violations:
        print(f"violation: {v}")
    print(f"\n{len(report.releases)} releases, {len(report.violations)} violations; manifests in {out}")
    return 1 if report.violations or report.missing else 0


def _load(ref: str, project_dir: Path) -> PlanDocument:
    path = Path(ref)
    return PlanDocument.read(path) if path.suffix == ".json" else synthesize(ref, project_dir)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "plan":
            doc = synthesize(args.stack, args.project_dir)
            out = args.out or args.project_dir / "plans" / f"{args.stack}.json"
            doc.write(out)
            print(render(doc, summary_only=args.summary))
            # the pods' requests as the pinned charts render them, where the packages are at hand
            rendered = render_releases(doc, default_charts(args.project_dir))
            print("\n" + report(doc, date.today(), rendered))
            print(f"\nplan written to {out}")
            clients = args.clients or args.project_dir / "clients"
            for path in write_client_files(doc.outputs, clients, args.stack):
                print(f"client configuration written to {path}")
            # the policy pack's rules over this plan (charts rendered when their packages are beside the
            # project); mandatory violations fail the command
            config = read_stack_file(args.project_dir, args.stack)
            findings = evaluate(stack_from_plan(doc, config, default_charts(args.project_dir)))
            print("\n" + policy_report(findings))
            if args.policy_out:
                args.policy_out.parent.mkdir(parents=True, exist_ok=True)
                args.policy_out.write_text(json.dumps([asdict(f) for f in findings], indent=2) + "\n")
            if any(f.mandatory for f in findings):
                return EXIT_POLICY
        elif args.command == "chart-keys":
            return chart_keys(args.upstream)
        elif args.command == "comment":
            return comment_cli.run(args)
        elif args.command == "render":
            return render_stack(args.stack, args.charts, args.out, args.project_dir)
        else:
            old, new = _load(args.old, args.project_dir), _load(args.new, args.project_dir)
            print(render_diff(diff_plans(old, new, ignore_parents=args.ignore_parents), old, new))
    except ConfigError as e:
        print(e.render(), file=sys.stderr)
        return EXIT_CONFIG
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    return 0
