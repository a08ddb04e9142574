"""A small async client for the Kubernetes REST API that works with plain dicts (for the process kubelet)."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx


class KubeError(Exception):
    """The API server answered with an error status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"API server answered {status}: {body[:300]}")
        self.status = status


class KubeAPI:
    def __init__(self, server: str, token: str, ca_file: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=server,
            headers={"Authorization": f"Bearer {token}"},
            verify=ssl.create_default_context(cafile=ca_file),
            timeout=httpx.Timeout(30.0, read=None),
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json", **params: Any
    ) -> dict[str, Any]:
        content = None if body is None else json.dumps(body)
        r = await self.client.request(
            method, path, content=content, params=params or None, headers={"Content-Type": content_type}
        )
        if r.status_code >= 400:
            raise KubeError(r.status_code, r.text)
        return dict(r.json())

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("PATCH", path, body, content_type="application/merge-patch+json")

    async def watch(self, path: str, resource_version: str, **params: Any) -> AsyncIterator[dict[str, Any]]:
        """Events of one watch; ends when the server closes it (the caller relists on 410 Gone)."""
        query = {"watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "true", **params}
        async with self.client.stream("GET", path, params=query) as r:
            if r.status_code >= 400:
                raise KubeError(r.status_code, (await r.aread()).decode())
            async for line in r.aiter_lines():
                if line:
                    yield dict(json.loads(line))
