"""Run by tests/test_client_native_oidc.py with .venv-airflow's python (Airflow 3.1.7 + the FAB provider +
Authlib, as the pinned image has them), with AIRFLOW_HOME holding the planned webserver_config.py and the
chart's rendered airflow.cfg, and the API server's environment.

It serves a small OpenID provider over HTTPS (discovery, JWKS, token and userinfo endpoints; RS256 ID
tokens), builds Airflow's real API server app (airflow.api_fastapi.app.create_app: the FAB auth manager's
Flask app mounted under /auth, reading the webserver config), and signs each person in through it as the
gateway forwards a browser: GET /auth/login/oidc, the provider's authorization (done here: it reads the
request the API server redirected to and issues a code), then the callback. It prints, as JSON, what each
login did: the redirect URI and scopes the API server sent, where the callback led, and the user's roles
in Airflow's database afterwards.

Input: a JSON file (argv[1]) with `port`, `issuer`, `cert`, `key`, `client_id`, `client_secret`, `host`
(the public host) and `logins` (each {sub, email, groups, name?}).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from authlib.jose import RSAKey, jwt

with open(sys.argv[1]) as spec_file:
    SPEC = json.load(spec_file)
ISSUER = SPEC["issuer"]
PATH = urllib.parse.urlsplit(ISSUER).path
JWK = RSAKey.generate_key(2048, is_private=True)
PUBLIC_JWK = {**JWK.as_dict(is_private=False), "kid": "test-key", "use": "sig", "alg": "RS256"}
CODES: dict[str, dict[str, Any]] = {}  # code -> the authorization request it answers and whom it is for
TOKENS: dict[str, dict[str, Any]] = {}  # access token -> claims
TOKEN_REQUESTS: list[dict[str, Any]] = []


def discovery() -> dict[str, Any]:
    return {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/auth",
        "token_endpoint": f"{ISSUER}/token",
        "userinfo_endpoint": f"{ISSUER}/userinfo",
        "jwks_uri": f"{ISSUER}/jwks",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }


class Provider(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def reply(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == f"{PATH}/.well-known/openid-configuration":
            return self.reply(200, discovery())
        if path == f"{PATH}/jwks":
            return self.reply(200, {"keys": [PUBLIC_JWK]})
        if path == f"{PATH}/userinfo":
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if token not in TOKENS:
                return self.reply(401, {"error": "invalid_token"})
            return self.reply(200, TOKENS[token])
        return self.reply(404, {"error": "not_found"})

    def do_POST(self) -> None:
        if urllib.parse.urlsplit(self.path).path != f"{PATH}/token":
            return self.reply(404, {"error": "not_found"})
        form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
        basic = self.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            who, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            who, secret = urllib.parse.unquote(who), urllib.parse.unquote(secret)
        else:
            who, secret = form.get("client_id", ""), form.get("client_secret", "")
        TOKEN_REQUESTS.append({"client_id": who, "authenticated": secret == SPEC["client_secret"]})
        if who != SPEC["client_id"] or secret != SPEC["client_secret"]:
            return self.reply(401, {"error": "invalid_client"})
        grant = CODES.pop(form.get("code", ""), None)
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return self.reply(400, {"error": "invalid_grant"})
        # PKCE (RFC 7636 §4.6): the verifier must hash to the challenge of the authorization request
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if digest != grant["code_challenge"]:
            return self.reply(400, {"error": "invalid_grant", "error_description": "PKCE verification failed"})
        person, now = grant["person"], int(time.time())
        claims = {
            "iss": ISSUER, "sub": person["sub"], "aud": SPEC["client_id"], "iat": now, "exp": now + 300,
            "nonce": grant["nonce"], "email": person["email"], "name": person.get("name", ""),
            "given_name": person.get("name", "").split(" ")[0], "family_name": person.get("name", " ").split(" ")[-1],
            "preferred_username": person.get("preferred_username", person["email"]),
            SPEC["groups_claim"]: person["groups"],
        }  # fmt: skip
        # `forged`: signed by a key the provider does not publish, as an attacker's token would be
        signer = RSAKey.generate_key(2048, is_private=True) if person.get("forged") else JWK
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, signer).decode()
        access = secrets.token_urlsafe(24)
        TOKENS[access] = {k: v for k, v in claims.items() if k not in ("aud", "nonce", "iat", "exp")}
        return self.reply(200, {"access_token": access, "token_type": "Bearer", "expires_in": 300,
                                "id_token": id_token})  # fmt: skip


def serve() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", SPEC["port"]), Provider)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(SPEC["cert"], SPEC["key"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def login(client: Any, person: dict[str, Any]) -> dict[str, Any]:
    """One sign-in as the gateway forwards it: the public host, X-Forwarded-Proto https."""
    client.cookies.clear()
    headers = {"X-Forwarded-Proto": "https"}
    start = client.get("/auth/login/oidc", headers=headers, follow_redirects=False)
    result: dict[str, Any] = {"login_status": start.status_code}
    location = urllib.parse.urlsplit(start.headers.get("location", ""))
    result["authorize_endpoint"] = urllib.parse.urlunsplit(location._replace(query=""))
    query = dict(urllib.parse.parse_qsl(location.query))
    result["redirect_uri"], result["scope"] = query.get("redirect_uri"), query.get("scope")
    result["code_challenge_method"] = query.get("code_challenge_method")
    if start.status_code != 302 or "state" not in query:
        return result
    # the provider authenticates the person and redirects the browser back with a code
    code = secrets.token_urlsafe(16)
    CODES[code] = {"person": person, "nonce": query.get("nonce"), "redirect_uri": query["redirect_uri"],
                   "code_challenge": query.get("code_challenge")}  # fmt: skip
    # the browser keeps the session cookie, which is Secure: it is sent back over HTTPS only, as the
    # gateway's listener is, so it is carried by hand to this plain-HTTP test client (as the gateway does)
    cookies = [c for c in start.headers.get_list("set-cookie")]
    result["session_cookies_secure"] = bool(cookies) and all("; secure" in c.lower() for c in cookies)
    jar = "; ".join(c.split(";", 1)[0] for c in cookies)
    callback = urllib.parse.urlsplit(query["redirect_uri"])
    back = client.get(
        f"{callback.path}?{urllib.parse.urlencode({'code': code, 'state': query['state']})}",
        headers={**headers, "Cookie": jar},
        follow_redirects=False,
    )
    result["callback_status"], result["callback_location"] = back.status_code, back.headers.get("location")
    if back.status_code != 302 or not back.headers["location"].startswith("/auth/"):
        return result
    # signed in: FAB's index hands the UI its API token (the `_token` cookie) and sends it to the UI
    jar = "; ".join(c.split(";", 1)[0] for c in back.headers.get_list("set-cookie")) or jar
    index = client.get(back.headers["location"], headers={**headers, "Cookie": jar}, follow_redirects=False)
    result["ui_location"] = index.headers.get("location")
    tokens = [c for c in index.headers.get_list("set-cookie") if c.startswith("_token=")]
    result["token_cookie_secure"] = bool(tokens) and "; secure" in tokens[0].lower()
    if tokens:
        # what that token may do through the API: read DAGs (every role), list the roles (Admin only)
        bearer = {"Authorization": "Bearer " + tokens[0].split(";", 1)[0].removeprefix("_token=")}
        result["api"] = {path: client.get(path, headers=bearer).status_code
                         for path in ("/api/v2/dags", "/auth/fab/v1/roles")}  # fmt: skip
    return result


def account(email: str) -> dict[str, Any] | None:
    """The person's Airflow user (FAB's ab_user) after the login, found by e-mail: its username and roles."""
    from airflow.providers.fab.auth_manager.models import User
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        user = session.scalars(select(User).where(User.email == email)).unique().one_or_none()
        if user is None:
            return None
        return {"username": user.username, "roles": sorted(r.name for r in user.roles)}


def main() -> None:
    serve()
    from airflow.api_fastapi.app import create_app
    from airflow.utils.db import upgradedb
    from starlette.testclient import TestClient

    # `airflow db migrate` in this process (the CLI's own call), FAB's tables included with its auth manager
    upgradedb()
    app = create_app()
    results = []
    with TestClient(app, base_url=f"http://{SPEC['host']}") as client:
        for person in SPEC["logins"]:
            result = login(client, person)
            result["account"] = account(person["email"])
            results.append(result)
    print("RESULT " + json.dumps({"logins": results, "token_requests": TOKEN_REQUESTS}))


if __name__ == "__main__":
    main()
