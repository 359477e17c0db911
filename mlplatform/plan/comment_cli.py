"""`python -m mlplatform comment`: the pull-request comment from the base and head plan directories, written
to a file or stdout and, with --pr, posted to the pull request or edited in place (GITHUB_TOKEN); with
--body, a comment rendered before is posted as it is."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

from mlplatform.plan.comment import MARKER, Labels, render_directories
from mlplatform.plan.github import GitHub, upsert_comment


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "comment",
        help="the pull-request comment: per stack the offline diff, policy, cost and `up`-time deltas",
        description=__doc__,
    )
    p.add_argument("--base", type=Path, help="the base commit's plans (<stack>.json, .policy.json, .error)")
    p.add_argument("--head", type=Path, help="the head commit's plans")
    p.add_argument("--body", type=Path, help="post this rendered comment instead of rendering one (with --pr)")
    p.add_argument("--out", type=Path, help="write the Markdown here (default: stdout)")
    p.add_argument("--base-label", default="base", help="how the base commit is named (e.g. its short SHA)")
    p.add_argument("--head-label", default="head", help="how the head commit is named")
    p.add_argument("--run-url", help="the workflow run holding the full plans (linked from the comment)")
    p.add_argument("--date", type=date.fromisoformat, default=None, help="price date (default: today)")
    p.add_argument("--pr", type=int, help="post to this pull request, editing the previous comment in place")
    p.add_argument(
        "--repo", default=os.environ.get("GITHUB_REPOSITORY"), help="owner/name (default: $GITHUB_REPOSITORY)"
    )


def run(args: argparse.Namespace) -> int:
    if args.body is not None:
        body = args.body.read_text()
        if MARKER not in body:
            print(f"error: {args.body} has no {MARKER} line to find it again by", file=sys.stderr)
            return 2
    elif args.base is None or args.head is None:
        print("error: --base and --head name the plan directories (or --body a rendered comment)", file=sys.stderr)
        return 2
    else:
        for d in (args.base, args.head):
            if not d.is_dir():
                raise FileNotFoundError(f"no plan directory {d}")
        labels = Labels(args.base_label, args.head_label, args.run_url)
        body = render_directories(args.base, args.head, args.date or date.today(), labels)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(body)
        print(f"comment written to {args.out} ({len(body):,} characters)")
    elif args.pr is None and args.body is None:
        print(body)
    if args.pr is not None:
        token = os.environ.get("GITHUB_TOKEN")
        if not token or not args.repo:
            print("error: posting needs GITHUB_TOKEN and --repo (or GITHUB_REPOSITORY)", file=sys.stderr)
            return 2
        gh = GitHub(os.environ.get("GITHUB_API_URL", "https://api.github.com"), token)
        action, comment_id = upsert_comment(gh, args.repo, args.pr, body, MARKER)
        print(f"comment {comment_id} {action} on {args.repo}#{args.pr}")
    return 0
