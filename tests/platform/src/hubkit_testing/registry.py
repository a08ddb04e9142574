"""A real OCI registry (Debian's ``docker-registry``, distribution 2.8) on a random loopback port.

It runs from its own config with no authentication and filesystem storage in a throwaway directory.
:meth:`RegistryServer.push_image` pushes a small image over plain HTTP the way any client does: a
config blob and a layer blob (``POST /v2/<repo>/blobs/uploads/`` then ``PUT ...?digest=``), then the
manifest (``PUT /v2/<repo>/manifests/<tag>``).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .processes import ManagedProcess, free_port

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"


class RegistryServer:
    """One running registry; ``.url`` is ``http://127.0.0.1:<port>``, ``.host`` is ``127.0.0.1:<port>``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: ManagedProcess | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def config_text(self) -> str:
        return (
            "version: 0.1\n"
            "log:\n  level: warn\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {self.workdir / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n"
        )

    def start(self) -> RegistryServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config.yml"
        config.write_text(self.config_text())
        argv = ["docker-registry", "serve", str(config)]
        self.process = ManagedProcess("docker-registry", argv, self.workdir / "registry.log").start()
        self.process.wait_until(self._healthy, 20, "answering on /v2/")
        return self

    def _healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/v2/", timeout=1) as r:
            return bool(r.status == 200)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- pushing --------------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        url = path if path.startswith("http") else self.url + path
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()

    def push_blob(self, repo: str, data: bytes) -> str:
        """Upload one blob (monolithic: POST then PUT with the digest); returns its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        _, headers, _ = self._request("POST", f"/v2/{repo}/blobs/uploads/")
        location = headers["Location"]
        if location.startswith("/"):
            location = self.url + location
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
