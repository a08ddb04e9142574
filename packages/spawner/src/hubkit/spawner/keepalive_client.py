"""Reading hubkit-nfs-keepalive's ``GET /health`` over HTTP (the I/O of the home-volume check)."""

from __future__ import annotations

import json
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .exceptions import HubKitSpawnerError


class KeepaliveUnavailable(HubKitSpawnerError):
    """The keepalive's health did not answer, or not with its health JSON."""


async def fetch_volume_health(url: str, timeout: float) -> dict[str, Any]:
    """The keepalive's health document; it answers 503 (with the same body) while a volume is unhealthy."""
    try:
        response = await AsyncHTTPClient().fetch(
            HTTPRequest(url, request_timeout=timeout, connect_timeout=timeout, follow_redirects=False)
        )
        body = response.body
    except HTTPClientError as e:
        if e.code != 503 or e.response is None:
            raise KeepaliveUnavailable(f"reading the NFS keepalive health at {url}: {e}") from e
        body = e.response.body
    except OSError as e:
        raise KeepaliveUnavailable(f"reading the NFS keepalive health at {url}: {e}") from e
    try:
        status = json.loads(body or b"")
    except ValueError as e:
        raise KeepaliveUnavailable(f"the NFS keepalive health at {url} is not JSON: {e}") from e
    if not isinstance(status, dict) or not isinstance(status.get("volumes"), dict):
        raise KeepaliveUnavailable(f"the NFS keepalive health at {url} has no volumes")
    return status
