"""A small client for the JupyterHub REST API: retries with backoff, bounded concurrency, paging.

- At most ``concurrency`` requests are in flight at once, whatever the caller does.
- 5xx, 429, timeouts and connection errors are retried with exponential backoff (plus jitter,
  honouring ``Retry-After``); while one request backs off, *no* request is sent, so a slow or
  failing hub sees the load drop instead of a retry storm.
- ``pages()`` reads a paginated list endpoint: the first page says how many items there are, the
  remaining pages are then requested concurrently (still within the concurrency bound).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter

from .exceptions import HubAPIError

__all__ = ["HubClient", "HubClientStats", "RetryPolicy"]

log = logging.getLogger(__name__)

PAGINATION = "application/jupyterhub-pagination+json"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one request: ``attempts`` in all, backoff doubling from ``backoff_initial``."""

    attempts: int = 5
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    timeout: float = 30.0


@dataclass
class HubClientStats:
    """Plain counters (also exported as Prometheus metrics) for logs, tests and benchmarks."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    retry_reasons: dict[str, int] = field(default_factory=dict)


class HubClient:
    """Talk to the hub API at ``api_url`` (e.g. ``http://hub:8081/hub/api``) with ``token``."""

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        concurrency: int = 10,
        retry: RetryPolicy | None = None,
        registry: CollectorRegistry | None = None,
        metrics_prefix: str = "hubkit",
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.stats = HubClientStats()
        self._slots = asyncio.Semaphore(concurrency)
        self._resume_at = 0.0
        self._http = httpx.AsyncClient(
            headers={"Authorization": f"token {token}", "User-Agent": "hubkit-services"},
            timeout=self.retry.timeout,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self._requests = Counter(
            f"{metrics_prefix}_hub_requests",
            "Requests sent to the hub API, by method and outcome (HTTP status or error kind).",
            ["method", "outcome"],
            registry=registry,
        )
        self._retries = Counter(
            f"{metrics_prefix}_hub_retries",
            "Hub API requests retried after a 5xx, 429, timeout or connection error, by reason.",
            ["reason"],
            registry=registry,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> HubClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- single requests -------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request (retrying transient failures); raise :class:`HubAPIError` on a 4xx/5xx."""
        url = path if path.startswith("http") else f"{self.api_url}{path}"
        for attempt in range(1, self.retry.attempts + 1):
            reason, retry_after, response = await self._attempt(method, url, params, json, headers)
            if reason is None and response is not None:
                if response.status_code >= 400:
                    self.stats.failures += 1
                    raise HubAPIError(method, path, response.status_code, _detail(response))
                return response
            assert reason is not None
            if attempt == self.retry.attempts:
                self.stats.failures += 1
                status = response.status_code if response is not None else None
                detail = _detail(response) if response is not None else reason
                raise HubAPIError(method, path, status, f"{detail} (gave up after {attempt} attempts)")
            delay = self._backoff(attempt, retry_after)
            self.stats.retries += 1
            self.stats.retry_reasons[reason] = self.stats.retry_reasons.get(reason, 0) + 1
            self._retries.labels(reason).inc()
            log.warning(
                "hub API %s %s: %s; retrying in %.1f s (attempt %d)", method, path, reason, delay, attempt
            )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self,
        method: str,
        url: str,
        params: Mapping[str, str | int] | None,
        body: Any,
        headers: Mapping[str, str] | None,
    ) -> tuple[str | None, float | None, httpx.Response | None]:
        async with self._slots:
            wait = self._resume_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self.stats.requests += 1
            try:
                response = await self._http.request(
                    method, url, params=params, json=body, headers=dict(headers or {})
                )
            except httpx.TimeoutException:
                self._requests.labels(method, "timeout").inc()
                return "timeout", None, None
            except httpx.TransportError as e:
                self._requests.labels(method, "connection-error").inc()
                return f"connection error ({type(e).__name__})", None, None
        self._requests.labels(method, str(response.status_code)).inc()
        if response.status_code in RETRY_STATUSES:
            return f"HTTP {response.status_code}", _retry_after(response), response
        return None, None, response

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        base = min(self.retry.backoff_max, self.retry.backoff_initial * 2.0 ** (attempt - 1))
        delay = base * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.retry.backoff_max))
        # Everyone waits: a struggling hub should see the request rate drop, not a retry storm.
        self._resume_at = max(self._resume_at, time.monotonic() + delay)
        return delay

    async def get_json(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        return (await self.request("GET", path, params=params)).json()

    # --- paginated lists -------------------------------------------------------------------------

    async def pages(
        self, path: str, params: Mapping[str, str | int] | None = None, page_size: int = 200
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield the items of a paginated list endpoint page by page (not necessarily in order)."""
        query: dict[str, str | int] = {**(params or {}), "offset": 0, "limit": page_size}
        first = (await self.request("GET", path, params=query, headers={"Accept": PAGINATION})).json()
        items, info = _page(first, path)
        yield items
        total, limit = int(info.get("total", len(items))), int(info.get("limit") or page_size)
        if not info.get("next") or limit <= 0:
            return
        offsets = range(limit, total, limit)
        tasks = [
            asyncio.ensure_future(
                self.request(
                    "GET", path, params={**query, "offset": o, "limit": limit}, headers={"Accept": PAGINATION}
                )
            )
            for o in offsets
        ]
        try:
            for done in asyncio.as_completed(tasks):
                items, _ = _page((await done).json(), path)
                yield items
        finally:
            for task in tasks:
                task.cancel()


def _page(body: Any, path: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if isinstance(body, list):  # a hub that ignores the pagination Accept header
        return body, {}
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise HubAPIError("GET", path, 200, "the answer is not a paginated list")
    return body["items"], dict(body.get("_pagination") or {})


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])
    return response.text[:200]
