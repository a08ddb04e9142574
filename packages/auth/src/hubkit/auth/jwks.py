"""A cache of platforms' JSON Web Key Sets: fetched once per ``max_age``, refreshed on an unknown ``kid``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
import jwt

from .exceptions import LaunchRejected


@dataclass
class _Entry:
    fetched: float
    keys: dict[str, jwt.PyJWK]


@dataclass
class JWKSCache:
    """Keys by JWKS URL. An unknown kid triggers at most one refetch per ``min_refetch`` seconds."""

    max_age: float = 300.0
    min_refetch: float = 10.0
    timeout: float = 5.0
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def key(self, url: str, kid: str | None) -> jwt.PyJWK:
        entry = self._entries.get(url)
        now = time.monotonic()
        stale = entry is None or now - entry.fetched > self.max_age
        unknown = entry is not None and not self._pick(entry, kid) and now - entry.fetched > self.min_refetch
        if stale or unknown:
            entry = await self._fetch(url)
        assert entry is not None
        found = self._pick(entry, kid)
        if found is None:
            raise LaunchRejected("The launch was signed with a key the LMS does not publish.", 401)
        return found

    @staticmethod
    def _pick(entry: _Entry, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return next(iter(entry.keys.values())) if len(entry.keys) == 1 else None
        return entry.keys.get(kid)

    async def _fetch(self, url: str) -> _Entry:
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            entry = self._entries.get(url)
            if entry is not None and time.monotonic() - entry.fetched < 1.0:
                return entry  # another launch refreshed it while we waited
            try:
                async with httpx.AsyncClient(timeout=self.timeout) as client:
                    response = await client.get(url)
                response.raise_for_status()
                key_set = jwt.PyJWKSet.from_dict(response.json())
            except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as e:
                raise LaunchRejected(
                    "The hub could not fetch the LMS's signing keys, so the launch cannot be verified; "
                    "try again later or ask the hub's admins.",
                    401,
                ) from e
            keys = {k.key_id or f"#{i}": k for i, k in enumerate(key_set.keys)}
            entry = self._entries[url] = _Entry(time.monotonic(), keys)
            return entry
