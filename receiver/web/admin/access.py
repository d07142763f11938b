"""Who may use the admin API and the dashboard.

With ``PHOTOHOOK_ADMIN_TOKEN`` set: requests carrying ``Authorization: Bearer <token>`` (compared
in constant time), or the dashboard's signed session cookie. Unset: loopback clients only, and
never a request that came through a proxy.
"""

from __future__ import annotations

import hashlib

from itsdangerous import BadSignature, TimestampSigner
from starlette.requests import HTTPConnection

from receiver.clientaddr import AddressSet, client_address
from receiver.errors import Forbidden, Unauthorized
from receiver.secrets import Secret

SESSION_COOKIE = "photohook_session"
SESSION_SECONDS = 12 * 3600
_PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


class AdminAccess:
    def __init__(self, token: Secret | None, trusted_proxies: AddressSet) -> None:
        self.token = token
        self._trusted_proxies = trusted_proxies
        self._sessions = (
            TimestampSigner(
                token.reveal(), salt="photohook.dashboard-session", digest_method=hashlib.sha256
            )
            if token is not None
            else None
        )

    def check(self, request: HTTPConnection) -> None:
        """Raise Unauthorized or Forbidden unless the request may use the admin surface."""
        if self.token is None:
            self._check_loopback(request)
            return
        authorization = request.headers.get("authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            if self.token.matches(credentials.strip()):
                return
            raise Unauthorized("the admin token is not valid")
        if self.session_valid(request.cookies.get(SESSION_COOKIE)):
            return
        raise Unauthorized("the admin API needs Authorization: Bearer <PHOTOHOOK_ADMIN_TOKEN>")

    def _check_loopback(self, request: HTTPConnection) -> None:
        peer = request.client.host if request.client else None
        forwarded = any(name in request.headers for name in _PROXY_HEADERS)
        client = client_address(peer, (), self._trusted_proxies)
        if forwarded or client is None or not client.is_loopback:
            raise Forbidden(
                "PHOTOHOOK_ADMIN_TOKEN is not set, so the admin API and the dashboard answer "
                "loopback clients only"
            )

    def new_session(self, token: str) -> str | None:
        """A session cookie value for the dashboard, if ``token`` is the admin token."""
        if self._sessions is None or self.token is None or not self.token.matches(token):
            return None
        return self._sessions.sign("admin").decode()

    def session_valid(self, cookie: str | None) -> bool:
        if self._sessions is None or not cookie:
            return False
        try:
            self._sessions.unsign(cookie, max_age=SESSION_SECONDS)
        except BadSignature:
            return False
        return True
