"""The culler as a hub-managed service, its dry run, its settings and its behaviour under faults."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from conftest import CULLER, CullerHub, FaultProxy, FaultRules, culler_service_config
from prometheus_client import CollectorRegistry

from hubkit.services.common import SettingsError, load_settings
from hubkit.services.culler import CalendarSettings, CullerSettings
from hubkit_testing.hub import Hub
from hubkit_testing.processes import free_port

MIN = timedelta(minutes=1)
CULLER_BIN = str(Path(sys.executable).parent / "hubkit-culler")


def _metric(registry: CollectorRegistry, name: str, labels: dict[str, str] | None = None) -> float:
    value = registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


async def test_managed_service_culls_in_real_time_and_serves_metrics(
    hub_factory: Callable[..., Hub], tmp_path: Path
) -> None:
    config = tmp_path / "culler.yaml"
    config.write_text("idle_timeout_seconds: 2\ninterval_seconds: 1\n")
    port = free_port()
    managed = f', "command": [{CULLER_BIN!r}, "--config", {str(config)!r}], "url": "http://127.0.0.1:{port}"'
    hub = hub_factory(culler_service_config("unused-" + os.urandom(8).hex(), managed))
    await hub.start_server("sleepy")
    await hub.wait_for_server("sleepy", ready=False, timeout=30)

    async with httpx.AsyncClient(base_url=hub.url) as c:
        metrics = (await c.get(f"/services/{CULLER}/metrics")).text
        health = await c.get(f"/services/{CULLER}/health")
    assert 'hubkit_culler_culls_total{dry_run="false",kind="server",policy="idle:default"} 1.0' in metrics
    assert "hubkit_culler_sweep_duration_seconds_count" in metrics
    assert health.status_code == 200
    assert health.json()["service"] == "hubkit-culler"
    log = hub.log_path.read_text()
    assert "culled server sleepy/: idle for 00:00:0" in log
    assert "[policy idle:default]" in log


async def test_dry_run_prints_what_and_why_and_culls_nothing(
    culler_hub: Callable[..., CullerHub], tmp_path: Path
) -> None:
    ch = culler_hub()
    await ch.hub.start_server("idler")
    await ch.hub.start_server("typist")
    await asyncio.sleep(2.2)
    await ch.activity("typist", timedelta(seconds=(time.time() - ch.t0.timestamp())))
    config = tmp_path / "culler.json"
    config.write_text('{"idle_timeout_seconds": 2}')
    env = os.environ | {"JUPYTERHUB_API_URL": ch.api_url, "JUPYTERHUB_API_TOKEN": ch.token}
    out = subprocess.run(
        [CULLER_BIN, "--config", str(config), "--dry-run", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = out.stdout.splitlines()
    assert lines[0].startswith("would cull server idler/: idle for 00:00:0")
    assert lines[0].endswith("(limit 00:00:02) [policy idle:default]")
    assert lines[1] == "1 to cull, 2 servers checked, 0 held"
    assert await ch.running() == {"idler/", "typist/"}


async def test_bad_settings_are_refused_with_one_plain_sentence(
    culler_hub: Callable[..., CullerHub], tmp_path: Path
) -> None:
    bad = tmp_path / "culler.yaml"
    bad.write_text("idle_timeout_seconds: 600\nidle_timout: 20\n")
    with pytest.raises(SettingsError, match=r"idle_timout: Extra inputs are not permitted"):
        load_settings(CullerSettings, bad, env_prefix="HUBKIT_CULLER_", env={})
    with pytest.raises(SettingsError, match=r"idle_rules.0: Value error, idle rule 'gpu' must list"):
        load_settings(
            CullerSettings,
            None,
            env_prefix="HUBKIT_CULLER_",
            env={"HUBKIT_CULLER_IDLE_RULES": '[{"name": "gpu", "timeout_seconds": 60}]'},
        )
    with pytest.raises(SettingsError, match=r"dry_runn: Extra inputs are not permitted"):
        load_settings(
            CullerSettings, None, env_prefix="HUBKIT_CULLER_", env={"HUBKIT_CULLER_DRY_RUNN": "true"}
        )
    env_ok = load_settings(
        CullerSettings,
        None,
        env_prefix="HUBKIT_CULLER_",
        env={"HUBKIT_CULLER_USERS__INACTIVE_DAYS": "30", "HUBKIT_CULLER_CONCURRENCY": "4"},
    )
    assert env_ok.users.inactive_days == 30
    assert env_ok.concurrency == 4

    ch = culler_hub()
    await ch.hub.start_server("kept")
    env = os.environ | {"JUPYTERHUB_API_URL": ch.api_url, "JUPYTERHUB_API_TOKEN": ch.token}
    out = subprocess.run(
        [CULLER_BIN, "--config", str(bad), "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"hubkit-culler: invalid settings file {bad}: idle_timout: Extra inputs are not permitted"
    ]
    assert await ch.running() == {"kept/"}
    # Its token cannot do more than culling: starting a server is refused.
    async with httpx.AsyncClient(headers={"Authorization": f"token {ch.token}"}) as c:
        r = await c.post(f"{ch.api_url}/users/kept/servers/other", json={})
    assert r.status_code == 403


async def test_unreadable_calendar_holds_everything_until_it_can_be_read(
    culler_hub: Callable[..., CullerHub], tmp_path: Path
) -> None:
    ch = culler_hub()
    await ch.hub.start_server("waiting")
    calendar = tmp_path / "sessions.ics"
    calendar.write_text("BEGIN:VCALENDAR\r\nthis is not a calendar")
    settings = CullerSettings(
        idle_timeout_seconds=60, calendar=CalendarSettings(path=calendar, refresh_seconds=0.01)
    )
    culler = ch.culler(settings, at=30 * MIN)
    report = await culler.sweep()
    assert report.culled == []
    assert report.skipped is not None
    assert "was never read" in report.skipped
    assert culler.calendar is not None
    assert culler.calendar.last_error is not None
    assert "is not a valid ICS calendar" in culler.calendar.last_error
    calendar.write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nEND:VCALENDAR\r\n")
    await asyncio.sleep(0.02)
    report = await culler.sweep()
    await culler.client.aclose()
    assert [d.target for d in report.culled] == ["waiting/"]


async def test_hub_faults_are_retried_counted_and_do_not_stop_the_sweep(
    culler_hub: Callable[..., CullerHub], fault_proxy: Callable[[str, FaultRules], FaultProxy]
) -> None:
    ch = culler_hub()
    users = ["u1", "u2", "u3", "u4", "broken", "gone"]
    for u in users:
        await ch.hub.start_server(u)
    await ch.hub.start_server("garbled", {"profile": "garble-me"})
    rules = FaultRules(
        hang_first=1,
        hang_seconds=3,
        fail_first=3,
        fail_paths={"/users/broken/server": 500, "/users/gone/server": 404},
        # The hub's model of garbled's server gets a second, unparseable last_activity (last key wins).
        rewrite=(b'{"profile": "garble-me"}', b'{"profile": "garble-me"}, "last_activity": "last tuesday"'),
    )
    proxy = fault_proxy(ch.hub.url, rules)
    settings = CullerSettings(
        idle_timeout_seconds=600,
        concurrency=3,
        request_timeout_seconds=1,
        retry_attempts=5,
        backoff_initial_seconds=0.05,
        backoff_max_seconds=0.2,
    )
    culler = ch.culler(settings, at=20 * MIN, api_url=f"{proxy.url}/hub/api")
    report = await culler.sweep()
    await culler.client.aclose()
    registry = culler.metrics.registry

    assert sorted(d.target for d in report.culled) == ["u1/", "u2/", "u3/", "u4/"]
    failed = {d.target: why for d, why in report.failed}
    assert set(failed) == {"broken/", "gone/", "garbled/"}
    assert failed["garbled/"].startswith("cannot judge server garbled/: Invalid isoformat string")
    assert "answered 500" in failed["broken/"]
    assert "gave up after 5 attempts" in failed["broken/"]
    assert "answered 404" in failed["gone/"]
    assert await ch.running() == {"broken/", "gone/", "garbled/"}
    # 1 timeout + 3 injected 503s + 4 retries of broken's 500; the 404 is not retried.
    assert _metric(registry, "hubkit_culler_hub_retries_total", {"reason": "timeout"}) == 1
    assert _metric(registry, "hubkit_culler_hub_retries_total", {"reason": "HTTP 503"}) == 3
    assert _metric(registry, "hubkit_culler_hub_retries_total", {"reason": "HTTP 500"}) == 4
    assert _metric(registry, "hubkit_culler_cull_failures_total", {"kind": "server"}) == 3
    assert proxy.log.requests.count("DELETE /hub/api/users/broken/server") == 5
    assert proxy.log.requests.count("DELETE /hub/api/users/gone/server") == 1
    # At most `concurrency` live requests, plus the one the client gave up on (the proxy still holds it).
    assert proxy.log.max_in_flight <= 3 + 1


async def test_never_two_sweeps_at_once_and_a_slow_hub_is_not_flooded(
    culler_hub: Callable[..., CullerHub], fault_proxy: Callable[[str, FaultRules], FaultProxy]
) -> None:
    ch = culler_hub()
    names = [f"slow{i}" for i in range(6)]
    for u in names:
        await ch.hub.start_server(u)
    proxy = fault_proxy(ch.hub.url, FaultRules(delay=0.3))
    culler = ch.culler(
        CullerSettings(idle_timeout_seconds=600, concurrency=2), at=20 * MIN, api_url=f"{proxy.url}/hub/api"
    )
    first, second = await asyncio.gather(culler.sweep(), culler.sweep())
    await culler.client.aclose()
    assert first.skipped is None
    assert second.skipped == "previous sweep still running"
    assert sorted(d.target for d in first.culled) == sorted(f"{u}/" for u in names)
    assert proxy.log.max_in_flight == 2
    assert _metric(culler.metrics.registry, "hubkit_culler_sweeps_total", {"result": "skipped"}) == 1
    assert await ch.running() == set()
