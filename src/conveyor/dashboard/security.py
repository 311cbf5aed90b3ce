"""Who may see the dashboard, and proof that a state-changing request came from it.

- Authentication wraps the whole ASGI app (pages, static files, API): an ``AuthHook`` decides
  per request. :class:`BasicAuth` is the one the CLI installs from
  ``CONVEYOR_DASHBOARD_USER`` / ``CONVEYOR_DASHBOARD_PASSWORD``; a host app passes its own.
- CSRF: a signed double-submit token. The token (``nonce.hmac``) lives in an HttpOnly,
  SameSite=Strict cookie and is repeated in every form (``csrf_token``) or in the
  ``X-CSRF-Token`` header; a POST is accepted only when both are present, equal and signed by
  this dashboard. A cross-site page can neither read the cookie nor set the header. Origin and
  ``Sec-Fetch-Site`` are checked too, as a second, independent fence.
- Security headers on every response: a CSP without inline script or style, no framing, no
  MIME sniffing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

AuthHook = Callable[[Request], "bool | Awaitable[bool]"]
"""Return True to let the request through; False answers 401."""

CSRF_COOKIE = "conveyor_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


def is_loopback(host: str) -> bool:
    """Only an address that cannot be reached from another machine counts; ``0.0.0.0`` and
    host names other than ``localhost`` do not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BasicAuth:
    """HTTP basic auth against one user and password, compared in constant time."""

    challenge = 'Basic realm="Conveyor dashboard", charset="UTF-8"'

    def __init__(self, user: str, password: str) -> None:
        if not user or not password:
            raise ValueError("basic auth needs a non-empty user and password")
        self._expected = hashlib.sha256(f"{user}:{password}".encode()).digest()

    def __call__(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return False
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:
            return False
        # Hash both sides so the comparison's time does not depend on the lengths either.
        return hmac.compare_digest(hashlib.sha256(given).digest(), self._expected)


class AuthMiddleware:
    """Runs the hook before anything else answers, static files included."""

    def __init__(self, app: ASGIApp, hook: AuthHook) -> None:
        self.app = app
        self.hook = hook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        verdict = self.hook(Request(scope, receive))
        if inspect.isawaitable(verdict):
            verdict = await verdict
        if verdict is True:
            await self.app(scope, receive, send)
            return
        challenge = getattr(self.hook, "challenge", None)
        headers = {"www-authenticate": challenge} if challenge else {}
        path = str(scope.get("path", ""))
        response: Response
        if "/api/" in path:
            response = JSONResponse({"error": "authentication required", "status": 401},
                                    status_code=401, headers=headers)
        else:
            response = PlainTextResponse("authentication required", status_code=401,
                                         headers=headers)
        await response(scope, receive, send)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                if b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Csrf:
    """Issues and checks the signed double-submit token of one dashboard."""

    def __init__(self, secret: bytes | None = None) -> None:
        # A fresh secret per process is enough for one dashboard process; several behind a
        # load balancer share one through ``create_app(secret=...)``.
        self._secret = secret or secrets.token_bytes(32)

    def _sign(self, nonce: str) -> str:
        digest = hmac.new(self._secret, nonce.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def new_token(self) -> str:
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{self._sign(nonce)}"

    def valid(self, token: str | None) -> bool:
        if not token or token.count(".") != 1:
            return False
        nonce, signature = token.split(".")
        return hmac.compare_digest(signature.encode(), self._sign(nonce).encode())

    def token_for(self, request: Request) -> str:
        """The request's own cookie token when it is ours, else a new one (to be set)."""
        current = request.cookies.get(CSRF_COOKIE)
        return current if current and self.valid(current) else self.new_token()

    def set_cookie(self, request: Request, response: Response, token: str) -> None:
        if request.cookies.get(CSRF_COOKIE) == token:
            return
        response.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="strict",
            secure=request.url.scheme == "https", path=request.scope.get("root_path") or "/",
        )

    def check(self, request: Request, submitted: str | None) -> str | None:
        """None when the POST may proceed, else why it may not."""
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return f"cross-site request refused (Sec-Fetch-Site: {site})"
        origin = request.headers.get("origin")
        if origin is not None and origin != "null" and not _same_origin(origin, request):
            return "cross-origin request refused"
        if origin == "null":
            return "cross-origin request refused"
        cookie = request.cookies.get(CSRF_COOKIE)
        if not cookie or not self.valid(cookie):
            return "missing or invalid CSRF cookie; reload the page"
        if not submitted or not hmac.compare_digest(submitted.encode(), cookie.encode()):
            return "missing or wrong CSRF token; reload the page"
        return None


def _same_origin(origin: str, request: Request) -> bool:
    """The browser's origin against the host it asked for: ``Host``, or the one a reverse proxy
    that rewrites ``Host`` passes on in ``X-Forwarded-Host``."""
    netloc = urlsplit(origin).netloc.lower()
    headers = Headers(scope=request.scope)
    hosts = {headers.get("host", "").lower()}
    hosts |= {h.strip().lower() for h in headers.get("x-forwarded-host", "").split(",")}
    return bool(netloc) and netloc in hosts - {""}

