"""Reading an OCI registry's tags and manifests over HTTP (the I/O of image menus), with a TTL cache.

Authentication follows the Docker Registry HTTP API v2: a request answered ``401`` carries a
``WWW-Authenticate`` challenge. ``Bearer realm=…,service=…,scope=…`` sends us to the token endpoint
(anonymously, or with the pull secret's username and password as Basic auth) for a token that is cached
until its ``expires_in``; ``Basic`` means the registry itself takes the username and password. Tag lists
are paged with ``n``/``last`` and the ``Link: <…>; rel="next"`` header.

No credential or token ever appears in an exception message or a log line: messages name the registry,
the repository and at most the username.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .exceptions import HubKitSpawnerError

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
PAGE_SIZE = 1000
MAX_PAGES = 200  # 200 000 tags: beyond that a registry is looping, not listing
TOKEN_MARGIN = 5.0  # seconds before expires_in when a cached token is no longer used
DEFAULT_TOKEN_LIFETIME = 60  # the token spec's default when the endpoint gives no expires_in
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class RegistryUnavailable(HubKitSpawnerError):
    """The registry did not answer as expected (down, timing out, or an unexpected status)."""


class RegistryRefused(RegistryUnavailable):
    """The registry (or its token server) refused our credentials, or asked for some we do not have."""


@dataclass(frozen=True)
class Credentials:
    """A username and password from a pull secret; ``source`` names where they came from (for logs)."""

    username: str
    password: str = field(repr=False)
    source: str = ""

    @property
    def fingerprint(self) -> str:
        """Identifies the pair in cache keys without holding the password in clear."""
        return hashlib.sha256(f"{self.username}\0{self.password}".encode()).hexdigest()[:16]

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def describe(self) -> str:
        return f"user {self.username!r}" + (f" from {self.source}" if self.source else "")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic" (lower case)
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a ``WWW-Authenticate`` header (``Bearer realm="…",service="…"``)."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return Challenge(scheme.lower(), params)


def next_page(response: httpx.Response, page: list[str], n: int) -> str | None:
    """The next page's URL: the ``Link`` header's, else ``?n=&last=`` when the page was full."""
    match = _NEXT_LINK.search(response.headers.get("Link", ""))
    if match:
        return str(response.url.join(match.group(1)))
    if len(page) >= n and page:
        return str(response.url.copy_merge_params({"n": str(n), "last": page[-1]}))
    return None


class RegistryClient:
    """One registry as seen with one set of credentials; bearer tokens are cached per scope."""

    def __init__(self, url: str, credentials: Credentials | None = None, timeout: float = 10) -> None:
        self.url = url.rstrip("/")
        self.credentials = credentials
        self.timeout = timeout
        self.tokens: dict[str, tuple[float, str]] = {}  # scope → (monotonic expiry, token)
        self.basic = False  # the registry asked for Basic auth once: send it up front from then on
        self.token_requests = 0

    @property
    def host(self) -> str:
        return re.sub(r"^https?://", "", self.url)

    def _where(self, repository: str) -> str:
        return f"{repository} at {self.host}"

    def _auth_header(self, scope: str) -> dict[str, str]:
        if self.basic and self.credentials is not None:
            return {"Authorization": self.credentials.basic()}
        cached = self.tokens.get(scope)
        if cached and time.monotonic() < cached[0]:
            return {"Authorization": f"Bearer {cached[1]}"}
        return {}

    async def _token(self, http: httpx.AsyncClient, challenge: Challenge, scope: str, where: str) -> str:
        realm = challenge.params.get("realm", "")
        if not realm.startswith(("http://", "https://")):
            raise RegistryUnavailable(f"{where} sent a bearer challenge without a usable realm")
        params = {"scope": challenge.params.get("scope") or scope}
        if challenge.params.get("service"):
            params["service"] = challenge.params["service"]
        headers = {}
        if self.credentials is not None:
            params["account"] = self.credentials.username
            headers["Authorization"] = self.credentials.basic()
        self.token_requests += 1
        try:
            response = await http.get(realm, params=params, headers=headers)
        except httpx.HTTPError as e:
            raise RegistryUnavailable(
                f"the token server of {where} did not answer: {type(e).__name__}"
            ) from e
        if response.status_code in (401, 403):
            raise self._refused(where, response.status_code, "token server")
        if response.status_code != 200:
            raise RegistryUnavailable(f"the token server of {where} answered {response.status_code}")
        try:
            body: Any = response.json()
            token = str(body.get("token") or body.get("access_token") or "")
            lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError) as e:
            raise RegistryUnavailable(f"the token server of {where} sent no JSON token") from e
        if not token:
            raise RegistryUnavailable(f"the token server of {where} sent no token")
        self.tokens[scope] = (time.monotonic() + max(lifetime - TOKEN_MARGIN, 0.0), token)
        return token

    def _refused(self, where: str, status: int, who: str = "registry") -> RegistryRefused:
        if self.credentials is None:
            return RegistryRefused(
                f"the {who} of {where} refused anonymous access ({status}); name a pull secret for it"
            )
        return RegistryRefused(
            f"the {who} of {where} refused the credentials of {self.credentials.describe()} ({status}); "
            "check the secret's username and password"
        )

    async def request(
        self, http: httpx.AsyncClient, method: str, url: str, repository: str, accept: str = ""
    ) -> httpx.Response:
        """``method url`` answered with auth as the registry challenges for (``repository:<r>:pull``)."""
        scope = f"repository:{repository}:pull"
        where = self._where(repository)
        headers = {"Accept": accept} if accept else {}
        try:
            response = await http.request(method, url, headers={**headers, **self._auth_header(scope)})
            if response.status_code == 401:
                challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
                if challenge is None:
                    raise self._refused(where, 401)
                if challenge.scheme == "basic":
                    if self.credentials is None or self.basic:
                        raise self._refused(where, 401)
                    self.basic = True
                elif challenge.scheme == "bearer":
                    await self._token(http, challenge, scope, where)
                else:
                    raise RegistryUnavailable(f"{where} asks for unsupported {challenge.scheme!r} auth")
                response = await http.request(method, url, headers={**headers, **self._auth_header(scope)})
        except httpx.HTTPError as e:
            raise RegistryUnavailable(f"{where} did not answer: {type(e).__name__}") from e
        if response.status_code in (401, 403):
            self.tokens.pop(scope, None)
            raise self._refused(where, response.status_code)
        return response

    def _client(self) -> httpx.AsyncClient:
        # One client per operation: the hub's spawners and the render CLI may run on different loops.
        return httpx.AsyncClient(timeout=self.timeout, follow_redirects=True)

    async def list_tags(self, repository: str, page_size: int = PAGE_SIZE) -> list[str]:
        """All tags of a repository (``GET /v2/<repo>/tags/list``, paged)."""
        tags: list[str] = []
        seen: set[str] = set()
        next_url: str | None = f"{self.url}/v2/{repository}/tags/list?n={page_size}"
        async with self._client() as http:
            for _ in range(MAX_PAGES):
                if next_url is None:
                    return tags
                response = await self.request(http, "GET", next_url, repository)
                if response.status_code == 404:
                    raise RegistryUnavailable(f"{self._where(repository)} does not exist (404)")
                if response.status_code != 200:
                    raise RegistryUnavailable(
                        f"listing tags of {self._where(repository)} answered {response.status_code}"
                    )
                try:
                    page = [str(t) for t in (response.json().get("tags") or [])]
                except (ValueError, AttributeError) as e:
                    raise RegistryUnavailable(f"{self._where(repository)} sent no tag list") from e
                fresh = [t for t in page if t not in seen]
                if not fresh:  # a registry that ignores ``last`` repeats its page: the list is complete
                    return tags
                seen.update(fresh)
                tags.extend(fresh)
                next_url = next_page(response, page, page_size)
        raise RegistryUnavailable(f"{self._where(repository)} lists more than {MAX_PAGES} pages of tags")

    async def digests(self, repository: str, tags: Iterable[str]) -> dict[str, str | None]:
        """Manifest digest per tag (``HEAD /v2/<repo>/manifests/<tag>``); None for a tag that is not there."""
        out: dict[str, str | None] = {}
        async with self._client() as http:
            for tag in tags:
                url = f"{self.url}/v2/{repository}/manifests/{tag}"
                response = await self.request(http, "HEAD", url, repository, MANIFEST_TYPES)
                if response.status_code == 404:
                    out[tag] = None
                elif response.status_code == 200:
                    out[tag] = response.headers.get("Docker-Content-Digest") or ""
                else:
                    raise RegistryUnavailable(
                        f"checking {repository}:{tag} at {self.host} answered {response.status_code}"
                    )
        return out

    async def tag_exists(self, repository: str, tag: str) -> bool:
        return (await self.digests(repository, [tag]))[tag] is not None


@dataclass
class _Listing:
    fetched: float  # monotonic time of the last successful fetch
    tags: list[str]
    failed: float | None = None  # monotonic time of the last failed refresh (retries wait a TTL)
    error: str = ""


@dataclass
class TagCache:
    """Tag lists and digests per (registry, repository), kept for ``ttl`` seconds.

    A failed refresh keeps the last good list (:meth:`last_good`) and is retried only after ``ttl``,
    so a registry that is down costs one attempt (and one log line) per TTL, not one per form.
    """

    ttl: float
    entries: dict[tuple[str, str], _Listing] = field(default_factory=dict)
    digest_entries: dict[tuple[str, str, str], tuple[float, str | None]] = field(default_factory=dict)
    clients: dict[tuple[str, str], RegistryClient] = field(default_factory=dict)
    fetches: int = 0

    def client(self, url: str, credentials: Credentials | None, timeout: float) -> RegistryClient:
        key = (url, credentials.fingerprint if credentials else "")
        client = self.clients.get(key)
        if client is None:
            client = self.clients[key] = RegistryClient(url, credentials, timeout)
        client.timeout = timeout
        return client

    def fresh(self, url: str, repository: str) -> list[str] | None:
        """The cached list while it is younger than the TTL; raises while a failure is (no log needed)."""
        hit = self.entries.get((url, repository))
        now = time.monotonic()
        if hit is None:
            return None
        if hit.failed is not None and now - hit.failed < self.ttl:
            raise RegistryUnavailable(hit.error)
        return hit.tags if hit.failed is None and now - hit.fetched < self.ttl else None

    def last_good(self, url: str, repository: str) -> tuple[float, list[str]] | None:
        """(age in seconds, tags) of the last successful listing, if there was one."""
        hit = self.entries.get((url, repository))
        if hit is None or hit.fetched == 0:
            return None
        return time.monotonic() - hit.fetched, hit.tags

    async def tags(
        self, url: str, repository: str, timeout: float = 10, credentials: Credentials | None = None
    ) -> list[str]:
        cached = self.fresh(url, repository)
        if cached is not None:
            return cached
        key = (url, repository)
        try:
            tags = await self.client(url, credentials, timeout).list_tags(repository)
        except RegistryUnavailable as e:
            previous = self.entries.get(key) or _Listing(0.0, [])
            self.entries[key] = _Listing(previous.fetched, previous.tags, time.monotonic(), str(e))
            raise
        self.fetches += 1
        self.entries[key] = _Listing(time.monotonic(), tags)
        return tags

    def known_digests(self, url: str, repository: str) -> dict[str, str | None]:
        """Every digest fetched for the repository, however old (for the last good list's alias)."""
        return {t: d for (u, r, t), (_, d) in self.digest_entries.items() if (u, r) == (url, repository)}

    async def digests(
        self,
        url: str,
        repository: str,
        tags: Iterable[str],
        timeout: float = 10,
        credentials: Credentials | None = None,
    ) -> dict[str, str | None]:
        now = time.monotonic()
        wanted = list(dict.fromkeys(tags))
        out: dict[str, str | None] = {}
        missing = []
        for tag in wanted:
            hit = self.digest_entries.get((url, repository, tag))
            if hit and now - hit[0] < self.ttl:
                out[tag] = hit[1]
            else:
                missing.append(tag)
        if missing:
            fetched = await self.client(url, credentials, timeout).digests(repository, missing)
            for tag, digest in fetched.items():
                self.digest_entries[(url, repository, tag)] = (now, digest)
            out.update(fetched)
        return {tag: out[tag] for tag in wanted}


async def list_tags(
    url: str, repository: str, timeout: float = 10, credentials: Credentials | None = None
) -> list[str]:
    """All tags of a repository, authenticating as the registry asks."""
    return await RegistryClient(url, credentials, timeout).list_tags(repository)


async def tag_exists(
    url: str, repository: str, tag: str, timeout: float = 10, credentials: Credentials | None = None
) -> bool:
    """Whether ``repository:tag`` has a manifest (``HEAD /v2/<repo>/manifests/<tag>``)."""
    return await RegistryClient(url, credentials, timeout).tag_exists(repository, tag)
