"""The guard on JupyterHub's ``spawners.user_options`` column, on a real SQLite hub database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jupyterhub import orm
from sqlalchemy.orm import Session

from hubkit.spawner._progress import pod_step
from hubkit.spawner.options_store import install_guard, restore, take_new
from hubkit.spawner.profiles import offending


@pytest.fixture
def db() -> Iterator[Session]:
    session: Session = orm.new_session_factory("sqlite:///:memory:")()
    install_guard()
    install_guard()  # idempotent
    try:
        yield session
    finally:
        session.close()


def _spawner(db: Session) -> orm.Spawner:
    user = orm.User(name="student")
    db.add(user)
    db.commit()
    spawner = orm.Spawner(user=user, name="")
    db.add(spawner)
    db.commit()
    return spawner


def test_an_oversized_value_never_reaches_the_database(db: Session) -> None:
    spawner = _spawner(db)
    spawner.user_options = {"profile": "course"}
    db.commit()
    assert take_new(spawner) is not None
    spawner.user_options = {"profile": "x" * 1_000_000}
    db.commit()
    db.expire_all()
    assert spawner.user_options == {"profile": "course"}
    spawner.user_options = {f"k{i}": "v" for i in range(40)}
    db.commit()
    db.expire_all()
    assert spawner.user_options == {"profile": "course"}


def test_a_refused_new_value_is_replaced_by_the_one_it_overwrote(db: Session) -> None:
    spawner = _spawner(db)
    spawner.user_options = {"profile": "course"}
    db.commit()
    take_new(spawner)
    spawner.user_options = {"profile": "gpu"}
    db.commit()
    new = take_new(spawner)
    assert new is not None
    assert take_new(spawner) is None  # consumed once
    assert restore(spawner, db, new) == {"profile": "course"}
    db.expire_all()
    assert spawner.user_options == {"profile": "course"}
    assert take_new(spawner) is None


def test_the_log_context_truncates_the_value() -> None:
    assert offending("profile", "x" * 1000) == f"option='profile' value='{'x' * 80}'... length=1000"
    assert offending("image", "2026.01") == "option='image' value='2026.01' length=7"


def test_a_pod_being_set_up_on_a_node_is_a_step() -> None:
    pod = {"spec": {"nodeName": "process-node-1"}, "status": {"phase": "Pending"}}
    assert pod_step(pod) == "Setting up your server on process-node-1: network, storage and files."
    running = {"spec": {"nodeName": "process-node-1"}, "status": {"phase": "Running"}}
    assert pod_step(running) == "Your server's process is running on process-node-1."
    assert pod_step({"spec": {}, "status": {"phase": "Pending"}}) is None
    assert pod_step(None) is None
