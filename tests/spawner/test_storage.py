"""Storage layout (pure builders), safe names (hypothesis) and home provisioning on a real directory tree."""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubkit.spawner.exceptions import ConfigError
from hubkit.spawner.identity import HOME_PATTERN, Identity, safe_name
from hubkit.spawner.provisioner import HomeRequest, OwnerMismatch, provision_home
from hubkit.spawner.storage_layout import build_storage, parse_layout

IDENT = Identity(key="github:583231", uid=583231, gid=583231, home="github-583231-9b1d2f3a")
NFS = {"server": "home-nfs.storage.svc.cluster.local", "path": "/export/home"}
LAYOUT = {
    "home": {"nfs": NFS, "mount_path": "/home/jovyan"},
    "courses": [
        {
            "name": "ds100",
            "nfs": {"server": "10.0.0.5", "path": "/export/courses"},
            "sub_path": "ds100",
            "mount_path": "/home/jovyan/ds100",
            "read_groups": ["course:ds100:*"],
            "write_groups": ["course:ds100:instructor"],
        }
    ],
    "scratch": {"pvc": "scratch-nfs", "mount_path": "/scratch"},
}


def _mounts(groups: list[str]) -> dict[str, tuple[str | None, bool]]:
    volumes, mounts = build_storage(parse_layout(LAYOUT), IDENT, groups)
    assert [v.name for v in volumes] == [m.name for m in mounts]
    return {m.mount_path: (m.sub_path, m.read_only) for m in mounts}


def test_home_is_an_nfs_path_named_by_identity_not_username() -> None:
    volumes, _ = build_storage(parse_layout(LAYOUT), IDENT, [])
    home = volumes[0]
    assert home.nfs.server == NFS["server"]
    assert home.nfs.path == "/export/home/github-583231-9b1d2f3a"


def test_course_directory_is_read_only_for_students_and_writable_for_instructors() -> None:
    assert _mounts(["course:ds100:student"])["/home/jovyan/ds100"] == (None, True)
    assert _mounts(["course:ds100:instructor"])["/home/jovyan/ds100"] == (None, False)
    assert "/home/jovyan/ds100" not in _mounts(["course:cs61:student"])


def test_scratch_from_a_pvc_uses_a_subpath_named_by_home() -> None:
    assert _mounts([])["/scratch"] == ("github-583231-9b1d2f3a", False)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"homes": {}}, "unknown keys"),
        ({"home": {"mount_path": "/home/jovyan"}}, "exactly one of 'nfs' or 'pvc'"),
        ({"home": {"nfs": {"server": "x", "path": "relative"}, "mount_path": "/h"}}, "must be absolute"),
        ({"courses": [{"name": "c", "pvc": "p", "sub_path": "../other", "mount_path": "/c"}]}, "stay inside"),
        ({"home": {"pvc": "p", "mount_path": "/h", "colour": "red"}}, "unknown keys"),
    ],
)
def test_invalid_layouts_are_config_errors(layout: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_layout(layout)


HOSTILE = ["../etc", "a/b", "..", ".", "", "x" * 300, "Zoë:ümlaut", "github:1/../../root", "\x00", "A", "a"]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_names_map_inside_the_export(text: str) -> None:
    name = safe_name(text)
    assert HOME_PATTERN.match(name)
    assert posixpath.normpath(posixpath.join("/export/home", name)) == f"/export/home/{name}"


def test_hostile_names_are_pairwise_distinct() -> None:
    assert len({safe_name(t) for t in HOSTILE}) == len(HOSTILE)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=400))
def test_any_text_maps_to_a_safe_name_that_stays_inside(text: str) -> None:
    name = safe_name(text)
    assert HOME_PATTERN.match(name), name
    assert name not in {".", ".."}
    assert "/" not in name
    assert posixpath.normpath(posixpath.join("/export/home", name)) == f"/export/home/{name}"
    assert safe_name(text) == name  # stable


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300), st.text(max_size=300))
def test_two_different_identities_never_share_a_name(a: str, b: str) -> None:
    if a != b:
        assert safe_name(a) != safe_name(b)


# --- provisioning on a real directory tree --------------------------------------------------------


def test_provisioning_creates_owned_private_home_with_skeleton(tmp_path: Path) -> None:
    root, skel = tmp_path / "homes", tmp_path / "skel"
    root.mkdir()
    (skel / ".config").mkdir(parents=True)
    (skel / ".bashrc").write_text("export COURSE=ds100\n")
    (skel / ".config" / "settings.json").write_text("{}")
    req = HomeRequest(home=IDENT.home, key=IDENT.key, uid=IDENT.uid, gid=IDENT.gid)

    assert provision_home(root, skel, req) is True
    home = root / IDENT.home
    st_home = home.stat()
    assert (st_home.st_uid, st_home.st_gid) == (583231, 583231)
    assert stat.S_IMODE(st_home.st_mode) == 0o700
    assert (home / ".bashrc").read_text() == "export COURSE=ds100\n"
    assert (home / ".config" / "settings.json").stat().st_uid == 583231
    # second call: the existing home is left alone (the user's own changes survive)
    (home / ".bashrc").write_text("mine\n")
    assert provision_home(root, skel, req) is False
    assert (home / ".bashrc").read_text() == "mine\n"


def test_provisioning_refuses_another_key_for_the_same_home(tmp_path: Path) -> None:
    req = HomeRequest(home=IDENT.home, key=IDENT.key, uid=IDENT.uid, gid=IDENT.gid)
    provision_home(tmp_path, None, req)
    with pytest.raises(OwnerMismatch):
        provision_home(tmp_path, None, HomeRequest(IDENT.home, "ldap:someone-else", 5000, 5000))
    assert sorted(os.listdir(tmp_path)) == [".hubkit-owners", IDENT.home]


@pytest.mark.parametrize("home", ["../etc", "a/b", "..", "", "UPPER", "x" * 51])
def test_provisioning_refuses_unsafe_names_and_touches_nothing(tmp_path: Path, home: str) -> None:
    from hubkit.spawner.exceptions import ProvisioningError

    with pytest.raises(ProvisioningError):
        provision_home(tmp_path, None, HomeRequest(home, "github:1", 1000, 1000))
    assert list(tmp_path.iterdir()) == []


def test_provisioning_never_follows_a_symlinked_home(tmp_path: Path) -> None:
    from hubkit.spawner.exceptions import ProvisioningError

    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / IDENT.home).symlink_to(victim)
    with pytest.raises(ProvisioningError, match="symlink"):
        provision_home(tmp_path, None, HomeRequest(IDENT.home, IDENT.key, IDENT.uid, IDENT.gid))
    assert victim.stat().st_uid == 0


async def test_provisioner_http_refuses_bad_tokens_bodies_and_names(tmp_path: Path) -> None:
    import httpx

    from hubkit.spawner.provisioner import make_app
    from hubkit_testing.processes import free_port

    port = free_port()
    server = make_app(tmp_path, None, "s3cret-token-0123456789").listen(port, address="127.0.0.1")
    body = {"key": IDENT.key, "uid": IDENT.uid, "gid": IDENT.gid}
    good = {"Authorization": "Bearer s3cret-token-0123456789"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            assert (await c.post(f"/homes/{IDENT.home}", json=body)).status_code == 403
            bad = {"Authorization": "Bearer guess"}
            assert (await c.post(f"/homes/{IDENT.home}", json=body, headers=bad)).status_code == 403
            assert (await c.post(f"/homes/{IDENT.home}", json={"key": "x"}, headers=good)).status_code == 400
            assert (await c.post("/homes/..", json=body, headers=good)).status_code in (400, 404)
            assert (await c.post("/homes/%2e%2e", json=body, headers=good)).status_code in (400, 404)
            assert (await c.post("/homes/root", json=body | {"uid": 0}, headers=good)).status_code == 400
            assert list(tmp_path.iterdir()) == [], "refused requests create nothing"
            assert not (tmp_path / "root").exists()
            r = await c.post(f"/homes/{IDENT.home}", json=body, headers=good)
            assert (r.status_code, r.json()) == (201, {"home": IDENT.home, "created": True})
            r = await c.post(f"/homes/{IDENT.home}", json=body, headers=good)
            assert (r.status_code, r.json()["created"]) == (200, False)
            other = body | {"key": "ldap:other"}
            assert (await c.post(f"/homes/{IDENT.home}", json=other, headers=good)).status_code == 409
    finally:
        server.stop()
