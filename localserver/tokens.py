"""Signed preview tokens: an HMAC over sandbox id, port and expiry, short enough for a DNS label.

Layout before encoding (38 bytes): 16-byte sandbox UUID, 2-byte port, 4-byte expiry (unix seconds),
16-byte truncated HMAC-SHA256. Lower-case base32 without padding gives 61 characters, within the
63 a host name label may have, so ``{port}-{token}.localhost`` is a valid host name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass

from daytonaflow.localserver.errors import ApiError

_MAC_BYTES = 16
_TOKEN_BYTES = 16 + 2 + 4 + _MAC_BYTES


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

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, b"daytonaflow-preview-v1" + body, hashlib.sha256).digest()[:_MAC_BYTES]

    def issue(self, sandbox_id: str, port: int, expires_in_seconds: int) -> SignedToken:
        expires_at = int(time.time()) + expires_in_seconds
        body = uuid.UUID(sandbox_id).bytes + port.to_bytes(2, "big") + expires_at.to_bytes(4, "big")
        raw = body + self._mac(body)
        token = base64.b32encode(raw).decode().rstrip("=").lower()
        return SignedToken(token=token, sandbox_id=sandbox_id, port=port, expires_at=expires_at)

    def decode(self, token: str) -> SignedToken:
        """The token's claims once its MAC checks; raises :class:`PreviewTokenError` otherwise."""
        padded = token.upper() + "=" * (-len(token) % 8)
        try:
            raw = base64.b32decode(padded)
        except (binascii.Error, ValueError):
            raise PreviewTokenError("preview token is malformed", "TOKEN_INVALID") from None
        if len(raw) != _TOKEN_BYTES:
            raise PreviewTokenError("preview token is malformed", "TOKEN_INVALID")
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(body)):
            raise PreviewTokenError("preview token signature is invalid", "TOKEN_INVALID")
        return SignedToken(
            token=token,
            sandbox_id=str(uuid.UUID(bytes=body[:16])),
            port=int.from_bytes(body[16:18], "big"),
            expires_at=int.from_bytes(body[18:22], "big"),
        )

    def verify(self, token: str, port: int) -> SignedToken:
        claims = self.decode(token)
        if claims.port != port:
            raise PreviewTokenError(
                f"preview token is for port {claims.port}, not {port}", "TOKEN_PORT_MISMATCH"
            )
        if claims.token in self._revoked:
            raise PreviewTokenError("preview token has been expired", "TOKEN_REVOKED")
        if claims.expires_at <= time.time():
            raise PreviewTokenError("preview token has expired", "TOKEN_EXPIRED")
        return claims

    def revoke(self, token: str) -> SignedToken:
        claims = self.decode(token)
        now = time.time()
        # Forget revocations whose tokens have expired anyway, so the set stays small.
        self._revoked = {t: exp for t, exp in self._revoked.items() if exp > now}
        self._revoked[claims.token] = claims.expires_at
        return claims
