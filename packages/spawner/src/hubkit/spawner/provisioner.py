"""Home-directory provisioning: a small HTTP service that runs beside the NFS server, and its client.

The single-user pod never runs as root, so it cannot create or chown its own home. Instead the spawner
calls this service (``hubkit-spawner provision-server``), which runs as root on the machine that exports
the homes, before the pod is created. For each home it:

1. refuses a name that does not match the ``home`` pattern of docs/identity.md;
2. records the identity key owning the name in ``<root>/.hubkit-owners/<home>`` and refuses a
   different key later (a 409, shown to the user as one sentence);
3. creates ``<root>/<home>`` (never following a symlink) with mode 0700, copies the skeleton files,
   and chowns everything to the user's uid:gid. An existing home is left as it is.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .exceptions import ProvisioningError, SpawnRefused
from .identity import HOME_PATTERN, MAX_ID, MIN_ID, Identity

OWNERS_DIR = ".hubkit-owners"


class OwnerMismatch(ProvisioningError):
    """The home name is recorded as belonging to another identity key."""


@dataclass(frozen=True)
class HomeRequest:
    home: str
    key: str
    uid: int
    gid: int


def _copy_skeleton(skeleton: Path, target: Path, uid: int, gid: int) -> None:
    for src in sorted(skeleton.rglob("*")):
        if src.is_symlink():
            continue
        dst = target / src.relative_to(skeleton)
        if src.is_dir():
            dst.mkdir(mode=0o700, exist_ok=True)
        else:
            shutil.copyfile(src, dst)
            dst.chmod(stat.S_IMODE(src.stat().st_mode) & 0o755 | 0o600)
        os.chown(dst, uid, gid, follow_symlinks=False)


def provision_home(root: Path, skeleton: Path | None, req: HomeRequest) -> bool:
    """Create the home if needed; True when it was created now. Raises OwnerMismatch/ProvisioningError."""
    if not HOME_PATTERN.match(req.home):
        raise ProvisioningError(f"invalid home name {req.home!r:.80}")
    if not (MIN_ID <= req.uid < MAX_ID and MIN_ID <= req.gid < MAX_ID):
        raise ProvisioningError(f"uid/gid out of range: {req.uid}:{req.gid}")
    owners = root / OWNERS_DIR
    owners.mkdir(mode=0o700, exist_ok=True)
    record = owners / req.home
    try:
        fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        owner = record.read_text(encoding="utf-8")
        if owner != req.key:
            raise OwnerMismatch(f"home {req.home} belongs to {owner!r}, not {req.key!r}") from None
    else:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(req.key)
    target = root / req.home
    if target.is_symlink():
        raise ProvisioningError(f"{target} is a symlink; refusing to use it")
    if target.exists():
        return False
    staging = root / f".{req.home}.new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    if skeleton is not None and skeleton.is_dir():
        _copy_skeleton(skeleton, staging, req.uid, req.gid)
    os.chown(staging, req.uid, req.gid)
    staging.chmod(0o700)
    staging.rename(target)
    return True


class HomeHandler(web.RequestHandler):
    """``POST /homes/<home>`` with ``{"key", "uid", "gid"}`` and ``Authorization: Bearer <token>``."""

    def initialize(self, root: Path, skeleton: Path | None, token: str) -> None:
        self.root, self.skeleton, self.token = root, skeleton, token

    def check_xsrf_cookie(self) -> None:
        return None

    async def post(self, home: str) -> None:
        auth = self.request.headers.get("Authorization", "")
        if not hmac.compare_digest(auth.encode(), f"Bearer {self.token}".encode()):
            raise web.HTTPError(403, "bad token")
        try:
            body: Any = json.loads(self.request.body or b"{}")
            req = HomeRequest(home=home, key=str(body["key"]), uid=int(body["uid"]), gid=int(body["gid"]))
        except (ValueError, KeyError, TypeError) as e:
            raise web.HTTPError(400, "body must be {key, uid, gid}") from e
        try:
            created = await asyncio.to_thread(provision_home, self.root, self.skeleton, req)
        except OwnerMismatch as e:
            raise web.HTTPError(409, str(e)) from e
        except ProvisioningError as e:
            raise web.HTTPError(400, str(e)) from e
        self.set_status(201 if created else 200)
        self.finish({"home": home, "created": created})


def make_app(root: Path, skeleton: Path | None, token: str) -> web.Application:
    args = {"root": root, "skeleton": skeleton, "token": token}
    return web.Application([(r"/homes/([^/]+)", HomeHandler, args)])


async def request_home(url: str, token: str, identity: Identity, timeout: float) -> bool:
    """Ask the provisioner for the user's home; True when it was created now."""
    request = HTTPRequest(
        f"{url.rstrip('/')}/homes/{identity.home}",
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        body=json.dumps({"key": identity.key, "uid": identity.uid, "gid": identity.gid}),
        request_timeout=timeout,
    )
    try:
        response = await AsyncHTTPClient().fetch(request)
    except HTTPClientError as e:
        if e.code == 409:
            raise SpawnRefused(
                "Your home directory is recorded as belonging to another account; ask your admin.",
                f"home={identity.home} key={identity.key}",
            ) from e
        raise ProvisioningError(f"provisioner answered {e.code} for home {identity.home}") from e
    except OSError as e:
        raise ProvisioningError(f"provisioner at {url} unreachable: {e}") from e
    return bool(response.code == 201)
