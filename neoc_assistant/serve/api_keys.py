"""API keys for the OpenAI-compatible endpoints: made here, stored only as hashes, checked in constant time.

Why SHA-256 and not a slow password hash (scrypt, argon2): a key is 32 random bytes
made by ``new_key`` (256 bits - nothing to guess from a dictionary), and it is
checked on every request of a streaming client, on a 2-core machine; a slow hash
would cost tens of milliseconds per request and buy nothing against a key that
cannot be guessed. A person's chosen password is another matter (the UI login).

``serve.api_keys`` maps a name - what the audit trail records as the caller, so
it never holds the key - to ``"sha256:<64 hex digits>"``. A value that is not
such a hash is refused at start-up: a key pasted there in clear would otherwise
work and sit in ``neoc.toml`` for anyone who can read it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Mapping

from neoc_assistant.errors import InputError

PREFIX = "sha256:"
KEY_PREFIX = "neoc-"
_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def hash_key(key: str) -> str:
    return PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> tuple[str, str]:
    """(key to give the client once, hash to put in ``serve.api_keys``)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_key(key)


class ApiKeys:
    """The configured keys; ``name_of(token)`` is the key's name, or None for an unknown token."""

    def __init__(self, hashes: Mapping[str, str] | None = None):
        self._hashes: list[tuple[str, bytes]] = []
        for name, value in (hashes or {}).items():
            if not _NAME.match(str(name)):
                raise InputError(f"serve.api_keys: the name {str(name)[:40]!r} must be 1-64 letters, digits, '.', "
                                 "'_' or '-' (it is recorded in the audit trail as the caller).")
            if not _HASH.match(str(value).strip().lower()):
                raise InputError(f"serve.api_keys.{name}: expected the key's hash ('sha256:' + 64 hex digits, as "
                                 "`python -m neoc_assistant apikey new NAME` prints), never the key itself.")
            self._hashes.append((str(name), str(value).strip().lower().encode()))

    def __bool__(self) -> bool:
        return bool(self._hashes)

    def name_of(self, token: str) -> str | None:
        presented = hash_key(token).encode()
        found = None
        for name, stored in self._hashes:  # every key compared: the time says nothing about which matched
            if secrets.compare_digest(presented, stored):
                found = name
        return found
