"""Posting the pull-request comment once and then editing it in place, over GitHub's REST API.

The previous comment is the first one on the pull request that a bot wrote (the workflow's GITHUB_TOKEN
comments as `github-actions[bot]`) and that holds the marker; a person's comment quoting the marker is
never edited. Only the standard library: the workflow step runs before anything else is needed.
Endpoints: GitHub REST API 2022-11-28, "List issue comments", "Create an issue comment", "Update an issue
comment" (pull requests are issues to this API).
"""

from __future__ import annotations

import json
import re
import urllib.request
from dataclasses import dataclass
from typing import Any

API_VERSION = "2022-11-28"
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


@dataclass(frozen=True)
class GitHub:
    api_url: str  # GITHUB_API_URL: https://api.github.com, or a GitHub Enterprise Server's /api/v3
    token: str

    def call(self, method: str, url: str, body: dict[str, Any] | None = None) -> tuple[Any, str | None]:
        """(decoded JSON answer, the next page's URL from the Link header or None)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url if "://" in url else self.api_url.rstrip("/") + url, data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("X-GitHub-Api-Version", API_VERSION)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            found = _NEXT.search(response.headers.get("Link") or "")
            return json.loads(response.read() or b"null"), found[1] if found else None


def upsert_comment(gh: GitHub, repo: str, pr: int, body: str, marker: str) -> tuple[str, int]:
    """("created" | "updated", comment id): edits the bot's comment holding `marker`, else posts one."""
    url: str | None = f"/repos/{repo}/issues/{pr}/comments?per_page=100"
    while url is not None:
        page, url = gh.call("GET", url)
        for comment in page:
            if marker in (comment.get("body") or "") and (comment.get("user") or {}).get("type") == "Bot":
                gh.call("PATCH", f"/repos/{repo}/issues/comments/{comment['id']}", {"body": body})
                return "updated", int(comment["id"])
    created, _ = gh.call("POST", f"/repos/{repo}/issues/{pr}/comments", {"body": body})
    return "created", int(created["id"])
