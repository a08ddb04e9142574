"""Reading the prepuller's ``GET /status`` over HTTP (the I/O of the form's image hints), with a TTL cache."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from hubkit.services.image_menu_contract import images_not_everywhere

from .exceptions import HubKitSpawnerError


class PrepullerUnavailable(HubKitSpawnerError):
    """The prepuller's status did not answer, or not with its status JSON."""


async def fetch_not_everywhere(url: str, timeout: float) -> frozenset[str]:
    """The images (normalised names) some eligible node still lacks, from the status at ``url``."""
    try:
        response = await AsyncHTTPClient().fetch(
            HTTPRequest(url, request_timeout=timeout, connect_timeout=timeout, follow_redirects=False)
        )
        status = json.loads(response.body or b"")
    except (HTTPClientError, OSError, ValueError) as e:
        raise PrepullerUnavailable(f"reading the prepuller status at {url}: {e}") from e
    if not isinstance(status, dict):
        raise PrepullerUnavailable(f"the prepuller status at {url} is not a JSON object")
    return images_not_everywhere(status)


@dataclass
class StatusCache:
    """The last answer (or failure) per status URL, kept for ``ttl`` seconds.

    A failure is cached as well, so an unreachable prepuller costs one timeout per ``ttl``, not one per
    form; ``reachable`` remembers the last outcome so the spawner logs each change once.
    """

    ttl: float
    entries: dict[str, tuple[float, frozenset[str] | None]] = field(default_factory=dict)
    reachable: dict[str, bool] = field(default_factory=dict)
    fetches: int = 0

    async def not_everywhere(self, url: str, timeout: float) -> frozenset[str] | None:
        """Cached images some node lacks; ``None`` while the prepuller is unreachable."""
        hit = self.entries.get(url)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        self.fetches += 1
        try:
            images: frozenset[str] | None = await fetch_not_everywhere(url, timeout)
        except PrepullerUnavailable:
            self.entries[url] = (time.monotonic(), None)
            raise
        self.entries[url] = (time.monotonic(), images)
        return images
