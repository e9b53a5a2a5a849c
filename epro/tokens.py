"""One-time ePRO link tokens (pure Python): unguessable, stored only as a digest.

A token is 32 random bytes from the operating system's CSPRNG (``secrets.token_urlsafe``,
256 bits: OWASP Session Management Cheat Sheet asks for at least 64 bits of entropy), shown
once to the issuing site staff (URL and QR code) and never stored: the database keeps its
SHA-256 digest, so neither a database reader nor a backup can open a patient's form. A
random token needs no slow, salted hash (nothing to brute-force from a 256-bit secret).
The URL carries the token only: no subject, visit, trial or site identifier.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32


def new_token() -> str:
    """A fresh random token for a link (or a device cookie)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest(token: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def matches(token: str, stored_digest: str) -> bool:
    """Whether ``token`` is the one whose digest was stored (constant-time comparison)."""
    return hmac.compare_digest(digest(token), stored_digest or "")
