"""HTTP basic auth for the server's routes (`server.basic_auth`): one user."""

from __future__ import annotations

import base64
import hashlib
import hmac

REALM = "chatwatch"


class BasicAuth:
    """Constant-time check of `Authorization: Basic ...` against one user.

    Both sides are hashed first so the comparison takes the same time whatever the
    lengths; the configured password is never logged or echoed.
    """

    challenge = f'Basic realm="{REALM}", charset="UTF-8"'.encode()
    """The `WWW-Authenticate` value of a 401 (RFC 7617)."""

    def __init__(self, username: str, password: str) -> None:
        self._expected = self._digest(username.encode(), password.encode())

    @staticmethod
    def _digest(username: bytes, password: bytes) -> bytes:
        return hashlib.sha256(hashlib.sha256(username).digest() + password).digest()

    def allows(self, authorization: str) -> bool:
        """True when the `Authorization` header value names the configured user."""
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except ValueError:
            return False
        username, sep, password = decoded.partition(b":")
        if not sep:
            return False
        return hmac.compare_digest(self._digest(username, password), self._expected)
