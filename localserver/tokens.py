"""Signed preview tokens: an HMAC over sandbox id, port and expiry, short enough for a DNS label.

Layout before encoding (36 bytes): 16-byte sandbox UUID, 4-byte expiry (unix seconds), 16-byte
(128-bit) truncated HMAC-SHA256. The port is not carried: it is in the host or path beside the
token (``{port}-{token}``) and the MAC covers it, so a token opens only the port it was issued
for. Base 36 (digits and lower-case letters, the most a case-insensitive host name label can
hold) in a fixed width of 56 characters: with the longest port, ``65535-{token}`` is 62
characters, within the 63 a DNS label may have.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from dataclasses import dataclass

from daytonaflow.localserver.errors import ApiError

_MAC_BYTES = 16
_BODY_BYTES = 16 + 4
_TOKEN_BYTES = _BODY_BYTES + _MAC_BYTES
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
#: 36**56 > 2**(8 * 36): every 36-byte token fits, and every token has the same length.
TOKEN_CHARS = 56
_TOKEN = re.compile(rf"^[0-9a-z]{{{TOKEN_CHARS}}}$")


class PreviewTokenError(ApiError):
    """A preview request's token is missing, malformed, forged, expired or for something else."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(401, message, code=code)


@dataclass(frozen=True)
class SignedToken:
    token: str
    sandbox_id: str
    port: int
    expires_at: int


class PreviewSigner:
    """Issues and verifies signed preview tokens with one server secret; tracks revoked tokens."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._revoked: dict[str, int] = {}

    def _mac(self, body: bytes, port: int) -> bytes:
        signed = b"daytonaflow-preview-v2" + body + port.to_bytes(2, "big")
        return hmac.new(self._secret, signed, hashlib.sha256).digest()[:_MAC_BYTES]

    def issue(self, sandbox_id: str, port: int, expires_in_seconds: int) -> SignedToken:
        expires_at = int(time.time()) + expires_in_seconds
        body = uuid.UUID(sandbox_id).bytes + expires_at.to_bytes(4, "big")
        token = _encode(body + self._mac(body, port))
        return SignedToken(token=token, sandbox_id=sandbox_id, port=port, expires_at=expires_at)

    def decode(self, token: str, port: int) -> SignedToken:
        """The token's claims once its MAC checks for ``port``; raises :class:`PreviewTokenError`
        otherwise (a token issued for another port fails its MAC like a forged one)."""
        token = token.lower()
        if not _TOKEN.match(token):
            raise PreviewTokenError("preview token is malformed", "TOKEN_INVALID")
        number = int(token, 36)
        if number >> (8 * _TOKEN_BYTES):  # 56 digits hold more than 36 bytes: never issued
            raise PreviewTokenError("preview token is malformed", "TOKEN_INVALID")
        raw = number.to_bytes(_TOKEN_BYTES, "big")
        body, mac = raw[:_BODY_BYTES], raw[_BODY_BYTES:]
        if not hmac.compare_digest(mac, self._mac(body, port)):
            raise PreviewTokenError(
                f"preview token signature is invalid (or the token is not for port {port})", "TOKEN_INVALID"
            )
        return SignedToken(
            token=token,
            sandbox_id=str(uuid.UUID(bytes=body[:16])),
            port=port,
            expires_at=int.from_bytes(body[16:20], "big"),
        )

    def verify(self, token: str, port: int) -> SignedToken:
        claims = self.decode(token, port)
        if claims.token in self._revoked:
            raise PreviewTokenError("preview token has been expired", "TOKEN_REVOKED")
        if claims.expires_at <= time.time():
            raise PreviewTokenError("preview token has expired", "TOKEN_EXPIRED")
        return claims

    def revoke(self, token: str, port: int) -> SignedToken:
        claims = self.decode(token, port)
        now = time.time()
        # Forget revocations whose tokens have expired anyway, so the set stays small.
        self._revoked = {t: exp for t, exp in self._revoked.items() if exp > now}
        self._revoked[claims.token] = claims.expires_at
        return claims


def _encode(raw: bytes) -> str:
    number = int.from_bytes(raw, "big")
    digits = []
    for _ in range(TOKEN_CHARS):
        number, digit = divmod(number, 36)
        digits.append(_DIGITS[digit])
    return "".join(reversed(digits))
