"""A real OCI registry (Debian's ``docker-registry``, distribution 2.8) on a random loopback port.

It runs from its own config with filesystem storage in a throwaway directory, in one of three ways:

- ``auth="none"``: anonymous pull and push;
- ``auth="htpasswd"``: HTTP Basic against a bcrypt htpasswd file of ``users``;
- ``auth="token"``: the Docker token flow. :class:`TokenServer` is the test's own token endpoint: it
  checks Basic credentials of ``users`` (or grants anonymous pull on ``public_prefixes``) and answers
  with an RS256 JWT whose ``x5c`` header carries its self-signed certificate, the one the registry's
  ``rootcertbundle`` trusts, with ``iss``, ``aud`` (the service), ``exp``/``nbf`` and ``access`` claims
  as the registry's token spec requires.

:meth:`RegistryServer.push_image` pushes a small image over plain HTTP the way any client does: a
config blob and a layer blob (``POST /v2/<repo>/blobs/uploads/`` then ``PUT ...?digest=``), then the
manifest (``PUT /v2/<repo>/manifests/<tag>``), authenticated as the admin ``pusher``.

distribution 2.8 ignores ``n``/``last`` on ``tags/list`` (it always answers every tag, unordered, and no
``Link``). ``page_size`` puts :class:`PagingFront` before it: a loopback HTTP server that forwards every
request (with its ``Authorization``) to the registry and answers ``tags/list`` in pages as distribution 3
and Docker Hub do: sorted, ``n`` at most ``page_size``, after ``last``, with ``Link: <…>; rel="next"``
(or, with ``link_header=False``, without it, as registries that only honour ``n``/``last`` do).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import re
import secrets
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import bcrypt
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .processes import ManagedProcess, free_port

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
PUSHER = "pusher"
Auth = Literal["none", "htpasswd", "token"]


class _Server:
    """A threaded loopback HTTP server around one handler class."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.port = free_port()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _basic(header: str) -> tuple[str, str] | None:
    if not header.lower().startswith("basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode(errors="replace").partition(":")
    return user, password


class TokenServer:
    """The registry's token endpoint (``GET /token?service=&scope=``), signing with its own key."""

    def __init__(
        self,
        workdir: Path,
        users: dict[str, str],
        service: str = "hubkit-registry",
        public_prefixes: tuple[str, ...] = (),
        expires_in: int = 300,
    ) -> None:
        self.users = users
        self.service = service
        self.issuer = "hubkit-test-token-server"
        self.public_prefixes = public_prefixes
        self.expires_in = expires_in
        self.requests: list[dict[str, Any]] = []  # account, scopes, granted access (never a password)
        self.issued: list[str] = []  # every token handed out (tests grep logs for them)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hubkit test token signer")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = workdir / "token-signer.pem"
        workdir.mkdir(parents=True, exist_ok=True)
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.server = _Server(_TokenHandler)
        self.server.httpd.tokens = self  # type: ignore[attr-defined]

    @property
    def realm(self) -> str:
        return f"{self.server.url}/token"

    def issue(self, subject: str, access: list[dict[str, Any]]) -> str:
        """A JWT the registry accepts: RS256, x5c = our certificate, the spec's claims."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + self.expires_in,
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        der = self.cert.public_bytes(serialization.Encoding.DER)
        headers = {"typ": "JWT", "x5c": [base64.b64encode(der).decode()]}
        token = jwt.encode(claims, self.key, algorithm="RS256", headers=headers)
        self.issued.append(token)
        return token

    def grant(self, account: str | None, scopes: list[str]) -> list[dict[str, Any]]:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind != "repository" or not name:
                continue
            wanted = [a for a in actions.split(",") if a]
            if account == PUSHER:
                allowed = wanted
            elif account is not None:
                allowed = [a for a in wanted if a == "pull"]
            else:
                public = any(name.startswith(p) for p in self.public_prefixes)
                allowed = [a for a in wanted if a == "pull" and public]
            if allowed:
                access.append({"type": "repository", "name": name, "actions": allowed})
        return access

    def start(self) -> TokenServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()


class _TokenHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        tokens: TokenServer = self.server.tokens  # type: ignore[attr-defined]
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path != "/token" or query.get("service", [""])[0] != tokens.service:
            self._json(400, {"errors": [{"code": "UNSUPPORTED", "message": "unknown service"}]})
            return
        credentials = _basic(self.headers.get("Authorization", ""))
        account = None
        if credentials is not None:
            user, password = credentials
            if tokens.users.get(user) != password:
                tokens.requests.append({"account": user, "scopes": query.get("scope", []), "granted": None})
                self._json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                return
            account = user
        access = tokens.grant(account, query.get("scope", []))
        tokens.requests.append({"account": account, "scopes": query.get("scope", []), "granted": access})
        token = tokens.issue(account or "", access)
        now = dt.datetime.now(dt.UTC).isoformat()
        self._json(
            200, {"token": token, "access_token": token, "expires_in": tokens.expires_in, "issued_at": now}
        )


class PagingFront:
    """Forwards to the registry; answers ``tags/list`` in pages of at most ``page_size`` (see module doc)."""

    def __init__(self, upstream: str, page_size: int, link_header: bool = True) -> None:
        self.upstream = upstream
        self.page_size = page_size
        self.link_header = link_header
        self.pages_served = 0
        self.server = _Server(_PagingHandler)
        self.server.httpd.paging = self  # type: ignore[attr-defined]

    def start(self) -> PagingFront:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()


class _PagingHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _forward(self, method: str) -> None:
        front: PagingFront = self.server.paging  # type: ignore[attr-defined]
        url = urllib.parse.urlsplit(self.path)
        listing = url.path.endswith("/tags/list") and method == "GET"
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {
            k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept", "content-type")
        }
        req = urllib.request.Request(front.upstream + url.path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, out_headers, data = r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            status, out_headers, data = e.code, dict(e.headers), e.read()
        if listing and status == 200:
            data, link = self._page(front, url.path, urllib.parse.parse_qs(url.query), data)
            out_headers = {"Content-Type": "application/json"}
            if link:
                out_headers["Link"] = link
        self.send_response(status)
        for k, v in out_headers.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(data)

    def _page(
        self, front: PagingFront, path: str, query: dict[str, list[str]], data: bytes
    ) -> tuple[bytes, str]:
        listing = json.loads(data)
        tags = sorted(listing.get("tags") or [])
        n = min(int(query.get("n", [str(front.page_size)])[0]), front.page_size)
        last = query.get("last", [""])[0]
        rest = [t for t in tags if t > last] if last else tags
        page = rest[:n]
        front.pages_served += 1
        link = ""
        if len(rest) > n and front.link_header:
            link = f'<{path}?n={n}&last={urllib.parse.quote(page[-1])}>; rel="next"'
        return json.dumps({"name": listing.get("name"), "tags": page}).encode(), link

    def do_GET(self) -> None:
        self._forward("GET")

    def do_HEAD(self) -> None:
        self._forward("HEAD")

    def do_POST(self) -> None:
        self._forward("POST")

    def do_PUT(self) -> None:
        self._forward("PUT")


class RegistryServer:
    """One running registry; ``.url`` is ``http://127.0.0.1:<port>``, ``.host`` is ``127.0.0.1:<port>``.

    With ``page_size`` those name the paging front; ``.registry_url`` is always the registry itself.
    ``users`` maps usernames to passwords (htpasswd and token modes); the admin ``pusher`` is added.
    """

    def __init__(
        self,
        workdir: Path,
        auth: Auth = "none",
        users: dict[str, str] | None = None,
        page_size: int | None = None,
        link_header: bool = True,
        public_prefixes: tuple[str, ...] = (),
        token_expires_in: int = 300,
    ) -> None:
        self.workdir = workdir
        self.auth = auth
        self.pusher_password = secrets.token_urlsafe(12)
        self.users = {**(users or {}), PUSHER: self.pusher_password}
        self.registry_port = free_port()
        self.process: ManagedProcess | None = None
        self.tokens: TokenServer | None = None
        if auth == "token":
            self.tokens = TokenServer(
                workdir, self.users, public_prefixes=public_prefixes, expires_in=token_expires_in
            )
        self.front = PagingFront(self.registry_url, page_size, link_header) if page_size else None

    @property
    def port(self) -> int:
        return self.front.server.port if self.front else self.registry_port

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.registry_port}"

    def auth_config(self) -> str:
        if self.auth == "htpasswd":
            lines = [
                f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=5)).decode()}"
                for u, p in self.users.items()
            ]
            path = self.workdir / "htpasswd"
            path.write_text("\n".join(lines) + "\n")
            return f"auth:\n  htpasswd:\n    realm: hubkit-test\n    path: {path}\n"
        if self.tokens is not None:
            return (
                "auth:\n  token:\n"
                f"    realm: {self.tokens.realm}\n"
                f"    service: {self.tokens.service}\n"
                f"    issuer: {self.tokens.issuer}\n"
                f"    rootcertbundle: {self.tokens.bundle}\n"
            )
        return ""

    def config_text(self) -> str:
        return (
            "version: 0.1\n"
            "log:\n  level: warn\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {self.workdir / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.registry_port}\n" + self.auth_config()
        )

    def start(self) -> RegistryServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.tokens is not None:
            self.tokens.start()
        config = self.workdir / "config.yml"
        config.write_text(self.config_text())
        argv = ["docker-registry", "serve", str(config)]
        self.process = ManagedProcess("docker-registry", argv, self.workdir / "registry.log").start()
        self.process.wait_until(self._healthy, 20, "answering on /v2/")
        if self.front is not None:
            self.front.start()
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.registry_url}/v2/", timeout=1) as r:
                return bool(r.status == 200)
        except urllib.error.HTTPError as e:  # 401 with a challenge: up, and asking for auth
            return e.code == 401 and self.auth != "none"

    def stop(self) -> None:
        if self.front is not None:
            self.front.stop()
        if self.process is not None:
            self.process.stop()
        if self.tokens is not None:
            self.tokens.stop()

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- pushing --------------------------------------------------------------------------------

    def _push_auth(self, path: str) -> dict[str, str]:
        """The pusher's Authorization: Basic, or a push token for the repository the path names."""
        if self.auth == "htpasswd":
            raw = f"{PUSHER}:{self.pusher_password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        if self.tokens is not None:
            match = re.match(r"^/v2/(.+?)/(?:blobs|manifests)/", urllib.parse.urlsplit(path).path)
            assert match, f"not a push path: {path}"
            repo = match.group(1)
            access = [{"type": "repository", "name": repo, "actions": ["pull", "push"]}]
            return {"Authorization": f"Bearer {self.tokens.issue(PUSHER, access)}"}
        return {}

    def _request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        url = path if path.startswith("http") else self.registry_url + path
        req = urllib.request.Request(
            url, data=body, method=method, headers={**self._push_auth(url), **(headers or {})}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()

    def push_blob(self, repo: str, data: bytes) -> str:
        """Upload one blob (monolithic: POST then PUT with the digest); returns its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        _, headers, _ = self._request("POST", f"/v2/{repo}/blobs/uploads/")
        location = headers["Location"]
        if location.startswith("/"):
            location = self.registry_url + location
        sep = "&" if "?" in location else "?"
        status, _, _ = self._request(
            "PUT",
            f"{location}{sep}digest={digest}",
            data,
            {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        )
        assert status == 201, f"blob upload answered {status}"
        return digest

    def push_image(self, repo: str, tag: str, files: dict[str, bytes] | None = None) -> str:
        """Push a small single-layer image; returns the manifest digest."""
        layer = _tar(files or {"hello.txt": f"{repo}:{tag}\n".encode()})
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": {"hubkit.test/tag": tag}},
                "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
            }
        ).encode()
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": self.push_blob(repo, config), "size": len(config)},
            "layers": [{"mediaType": LAYER_TYPE, "digest": self.push_blob(repo, layer), "size": len(layer)}],
        }
        body = json.dumps(manifest).encode()
        status, headers, _ = self._request(
            "PUT", f"/v2/{repo}/manifests/{tag}", body, {"Content-Type": MANIFEST_TYPE}
        )
        assert status == 201, f"manifest upload answered {status}"
        return headers.get("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())

    def tag_manifest(self, repo: str, source: str, tag: str) -> str:
        """Give ``repo:source``'s manifest a second tag (same digest, as ``recommended`` aliases do)."""
        _, _headers, body = self._request(
            "GET", f"/v2/{repo}/manifests/{source}", None, {"Accept": MANIFEST_TYPE}
        )
        status, out, _ = self._request(
            "PUT", f"/v2/{repo}/manifests/{tag}", body, {"Content-Type": MANIFEST_TYPE}
        )
        assert status == 201, f"manifest upload answered {status}"
        return out.get("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A running registry shared by the session (tests push to their own repositories)."""
    with RegistryServer(tmp_path_factory.mktemp("registry")) as server:
        yield server
