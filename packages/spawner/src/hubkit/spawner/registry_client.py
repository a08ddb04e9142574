"""Reading an OCI registry's tags and manifests over HTTP (the I/O of image menus), with a TTL cache."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .exceptions import HubKitSpawnerError

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


class RegistryUnavailable(HubKitSpawnerError):
    """The registry did not answer as expected."""


@dataclass
class TagCache:
    """Tag lists per (registry, repository), kept for ``ttl`` seconds."""

    ttl: float
    entries: dict[tuple[str, str], tuple[float, list[str]]] = field(default_factory=dict)
    fetches: int = 0

    async def tags(self, url: str, repository: str, timeout: float = 10) -> list[str]:
        key = (url, repository)
        hit = self.entries.get(key)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        tags = await list_tags(url, repository, timeout)
        self.fetches += 1
        self.entries[key] = (time.monotonic(), tags)
        return tags


async def list_tags(url: str, repository: str, timeout: float = 10) -> list[str]:
    """All tags of a repository (``GET /v2/<repo>/tags/list``, following ``Link`` pagination)."""
    tags: list[str] = []
    next_url: str | None = f"{url}/v2/{repository}/tags/list?n=1000"
    while next_url:
        try:
            response = await AsyncHTTPClient().fetch(HTTPRequest(next_url, request_timeout=timeout))
        except (HTTPClientError, OSError) as e:
            raise RegistryUnavailable(f"listing tags of {repository} at {url}: {e}") from e
        body = json.loads(response.body or b"{}")
        tags.extend(body.get("tags") or [])
        link = response.headers.get("Link", "")
        next_url = url + link[1 : link.index(">")] if link.startswith("</") else None
    return tags


async def tag_exists(url: str, repository: str, tag: str, timeout: float = 10) -> bool:
    """Whether ``repository:tag`` has a manifest (``HEAD /v2/<repo>/manifests/<tag>``)."""
    request = HTTPRequest(
        f"{url}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": MANIFEST_TYPES},
        request_timeout=timeout,
    )
    try:
        await AsyncHTTPClient().fetch(request)
    except HTTPClientError as e:
        if e.code == 404:
            return False
        raise RegistryUnavailable(f"checking {repository}:{tag} at {url}: {e}") from e
    except OSError as e:
        raise RegistryUnavailable(f"checking {repository}:{tag} at {url}: {e}") from e
    return True
