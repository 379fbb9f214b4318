"""Scoped API tokens (roles client, node, admin), stored as SHA-256 hashes, never in plain text.

A secret is 32 random bytes (urlsafe base64), so a plain SHA-256 is enough: there is nothing to
brute-force that a salt or a slow hash would protect. Lookups go by hash (indexed) and the match
is confirmed with a constant-time compare. A node token is bound to the worker id it first
registers (`worker_id`) and, when an admin created it for one node URL, to that URL (`url`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from typing import Any

from kgen.core.errors import BadInput, NotFound
from kgen.core.store.db import Database

ROLES = ("client", "node", "admin")
TOKEN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
SECRET_PREFIX = "kgt_"          # lets scanners and humans tell a kgen token from other secrets
LAST_USED_EVERY_S = 60.0        # last_used is rewritten at most this often (each write is an fsync)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _public(row) -> dict[str, Any]:
    item = dict(row)
    item.pop("hash", None)
    return item


class TokensMixin(Database):
    def create_token(self, role: str, name: str | None = None, *, url: str | None = None) -> tuple[dict, str]:
        """A new token: (its public row, the secret). The secret is never stored nor shown again."""
        if role not in ROLES:
            raise BadInput(f"role must be one of: {', '.join(ROLES)} (got {role!r})")
        if name is None:
            name = f"{role}-{secrets.token_hex(4)}"
        if not TOKEN_NAME.match(name):
            raise BadInput("token name must be 1-64 characters of letters, digits, '_', '.', '-'")
        secret = new_secret()
        try:
            with self.write() as conn:
                conn.execute("INSERT INTO tokens(name, role, hash, created_at, url) VALUES (?, ?, ?, ?, ?)",
                             (name, role, hash_secret(secret), time.time(), url))
        except sqlite3.IntegrityError:
            raise BadInput(f"a token named {name!r} already exists", code="conflict") from None
        return self.get_token(name), secret

    def get_token(self, name: str) -> dict[str, Any]:
        row = self.query_one("SELECT * FROM tokens WHERE name = ?", (name,))
        if row is None:
            raise NotFound(f"no token named {name!r}")
        return _public(row)

    def list_tokens(self) -> list[dict[str, Any]]:
        return [_public(r) for r in self.query("SELECT * FROM tokens ORDER BY created_at, name")]

    def revoke_token(self, name: str) -> None:
        with self.write() as conn:
            if conn.execute("DELETE FROM tokens WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"no token named {name!r}")

    def check_token(self, secret: str) -> dict[str, Any] | None:
        """The token's public row if `secret` is a live token, else None."""
        digest = hash_secret(secret)
        row = self.query_one("SELECT * FROM tokens WHERE hash = ?", (digest,))
        if row is None or not hmac.compare_digest(row["hash"], digest):
            return None
        now = time.time()
        if row["last_used"] is None or now - row["last_used"] >= LAST_USED_EVERY_S:
            with self.write() as conn:
                conn.execute("UPDATE tokens SET last_used = ? WHERE name = ?", (now, row["name"]))
        return _public(row)

    def bind_token(self, name: str, worker_id: str) -> None:
        """Bind a node token to its worker on first registration (no-op when already bound)."""
        with self.write() as conn:
            conn.execute("UPDATE tokens SET worker_id = ? WHERE name = ? AND worker_id IS NULL", (worker_id, name))

    def token_bound_to(self, worker_id: str) -> str | None:
        row = self.query_one("SELECT name FROM tokens WHERE worker_id = ?", (worker_id,))
        return row["name"] if row else None
