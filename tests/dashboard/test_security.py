"""Authentication, CSRF, security headers, and the CLI's refusal to serve openly off loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.testclient import TestClient

from apps import dashboard_app
from conveyor import Conveyor
from conveyor.dashboard import BasicAuth, create_app, is_loopback
from dashboard.conftest import csrf_token

PROTECTED = ["/", "/queues/email", "/tasks", "/dead", "/workers", "/schedules",
             "/static/dashboard.css", "/static/dashboard.js", "/api/stats", "/api/tasks",
             "/api/openapi.json", "/api/csrf", "/no-such-page"]


@pytest.fixture
def locked(app: Conveyor) -> TestClient:
    return TestClient(create_app(app, auth=BasicAuth("ops", "s3cret")))


@pytest.mark.parametrize("path", PROTECTED)
def test_without_credentials_every_path_is_401(locked: TestClient, path: str) -> None:
    response = locked.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic ")


@pytest.mark.parametrize("auth", [("ops", "wrong"), ("other", "s3cret"), ("ops", ""),
                                  ("ops", "s3cret" * 2)])
def test_wrong_credentials_are_401(locked: TestClient, auth: tuple[str, str]) -> None:
    assert locked.get("/api/stats", auth=auth).status_code == 401
    assert locked.get("/", headers={"Authorization": "Basic !!notbase64"}).status_code == 401
    assert locked.get("/", headers={"Authorization": "Bearer abc"}).status_code == 401


@pytest.mark.parametrize("path", PROTECTED[:-1])
def test_with_credentials_every_path_answers(locked: TestClient, path: str) -> None:
    assert locked.get(path, auth=("ops", "s3cret")).status_code == 200


def test_posts_need_credentials_before_anything_else(app: Conveyor, locked: TestClient) -> None:
    dashboard_app.send.enqueue("x@x")
    assert locked.post("/api/queues/email/pause").status_code == 401
    assert locked.post("/queues/email/pause").status_code == 401
    assert app.paused_queues() == set()


def test_an_auth_hook_of_the_host_app_decides(app: Conveyor) -> None:
    seen: list[str] = []

    async def only_admins(request: Request) -> bool:
        seen.append(request.url.path)
        return request.headers.get("x-role") == "admin"

    client = TestClient(create_app(app, auth=only_admins))
    refused = client.get("/api/stats")
    assert refused.status_code == 401 and "www-authenticate" not in refused.headers
    assert client.get("/api/stats", headers={"x-role": "admin"}).status_code == 200
    assert client.get("/static/dashboard.css").status_code == 401
    assert seen == ["/api/stats", "/api/stats", "/static/dashboard.css"]


def test_post_without_a_csrf_token_is_403(app: Conveyor, client: TestClient) -> None:
    csrf_token(client)  # the cookie alone is not enough
    assert client.post("/api/queues/email/pause").status_code == 403
    assert client.post("/queues/email/pause", data={"next": "/"}).status_code == 403
    assert app.paused_queues() == set()


def test_post_with_a_forged_or_foreign_token_is_403(app: Conveyor, client: TestClient) -> None:
    token = csrf_token(client)
    nonce, _ = token.split(".")
    for forged in (f"{nonce}.AAAA", "abc", token + "x"):
        response = client.post("/api/queues/email/pause", headers={"X-CSRF-Token": forged})
        assert response.status_code == 403, forged
    other = TestClient(create_app(app))  # another dashboard: another secret
    foreign = csrf_token(other)
    client.cookies.set("conveyor_csrf", foreign)
    response = client.post("/api/queues/email/pause", headers={"X-CSRF-Token": foreign})
    assert response.status_code == 403
    assert app.paused_queues() == set()


def test_post_without_the_cookie_is_403(app: Conveyor, client: TestClient) -> None:
    token = csrf_token(client)
    client.cookies.clear()
    assert client.post("/api/queues/email/pause",
                       headers={"X-CSRF-Token": token}).status_code == 403


def test_cross_origin_posts_are_refused_even_with_a_token(app: Conveyor,
                                                          client: TestClient) -> None:
    token = csrf_token(client)
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                    {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}):
        response = client.post("/api/queues/email/pause",
                               headers={"X-CSRF-Token": token, **headers})
        assert response.status_code == 403, headers
    same = client.post("/api/queues/email/pause", headers={
        "X-CSRF-Token": token, "Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 200
    proxied = client.post("/api/queues/reports/pause", headers={
        "X-CSRF-Token": token, "Origin": "https://ops.example.com",
        "X-Forwarded-Host": "ops.example.com"})
    assert proxied.status_code == 200
    assert app.paused_queues() == {"email", "reports"}


def test_gets_never_change_state(app: Conveyor, client: TestClient) -> None:
    for path in ("/queues/email/pause", "/api/queues/email/pause", "/dead/purge"):
        assert client.get(path).status_code == 405
    assert app.paused_queues() == set()


def test_security_headers_and_csrf_cookie_flags(client: TestClient) -> None:
    response = client.get("/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/api/stats").headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("example.com", False),
])
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith("CONVEYOR_DASHBOARD_")}
    environment.update(env, CONVEYOR_URL=f"sqlite:///{tmp_path / 'cli.db'}")
    return subprocess.run(
        [sys.executable, "-m", "conveyor", "dashboard", "apps.dashboard_app:app", *args],
        cwd=Path(__file__).parents[1], env=environment, capture_output=True, text=True,
        timeout=60,
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_the_cli_refuses_a_public_host_without_credentials(tmp_path: Path, host: str) -> None:
    result = run_cli(tmp_path, "--host", host, "--port", "0")
    assert result.returncode == 2
    assert "CONVEYOR_DASHBOARD_USER" in result.stderr and "refusing" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_cli_refuses_half_the_credentials(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--host", "0.0.0.0", "--port", "0",
                     CONVEYOR_DASHBOARD_USER="ops")
    assert result.returncode == 2 and "both" in result.stderr
