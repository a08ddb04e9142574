"""A teaching week, simulated: how long students wait for a server with no placeholders, z2jh-style static
placeholders, and HubKit's warm-seat broker + prepuller.

Discrete-event simulation in 15-second steps over one week. HubKit's side is driven by the REAL code:
``hubkit.services.warmseats.classes.parse_calendar`` reads the week's timetable (an ICS calendar with weekly
RRULEs), ``hubkit.services.warmseats.planner.plan`` decides the warm seats every 30 s, and the prepuller's
``plan_nodes``/``choose_pulls`` decide which image to pull on which node. The cluster (autoscaler, packing
scheduler, kubelet image pulls) is modelled; the assumptions are listed in docs/warmseats.md.

Run: ``/work/main/.venv/bin/python bench/class_start.py``; the last line is the BENCH line.
"""

from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hubkit.services.image_menu_contract import ImageEntry, ImageMenu, Placement, Toleration
from hubkit.services.prepuller.planning import NodeInfo, PullLimits, choose_pulls, merge_menus, plan_nodes
from hubkit.services.warmseats.classes import parse_calendar
from hubkit.services.warmseats.planner import ClassEvent, PlanInput, SizePolicy, plan

STEP = 15.0  # seconds
NODE_READY = 240.0  # autoscaler: pending pod → node Ready
PULL = 180.0  # image pull on a node that lacks the image
STARTUP = 10.0  # container start + jupyter ready once the image is there
WAIT_LIMIT = 30.0  # a "wait": more than this from request to a running server
SCALE_DOWN_AFTER = 600.0  # the autoscaler removes a node unneeded for 10 minutes
RECONCILE = 30.0  # broker reconcile period
WEEK_START = datetime(2026, 9, 14, tzinfo=UTC)  # a Monday

# Three profile sizes, each with its own node pool and image (GPU pool tainted).
POOLS = {"small": 8, "medium": 4, "gpu": 4}  # seats per node
IMAGES = {
    "small": "quay.io/jupyter/scipy-notebook:2026-09",
    "medium": "quay.io/jupyter/datascience-notebook:2026-09",
    "gpu": "quay.io/jupyter/pytorch-notebook:cuda12-2026-09",
}
GPU_TOLERATION = Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")

# name, expected students, profile mix, weekdays (0=Mon), start "HH:MM", minutes
TIMETABLE = [
    ("CS 101 Intro to Python", 120, {"small": 1.0}, "MO,WE", "09:00", 75),
    ("STAT 200 Statistics", 80, {"small": 0.7, "medium": 0.3}, "TU,TH", "10:30", 75),
    ("DS 300 Data Visualisation", 60, {"small": 0.4, "medium": 0.6}, "MO,WE", "13:00", 110),
    ("ML 400 Deep Learning", 40, {"small": 0.5, "gpu": 0.5}, "TU,TH", "14:00", 75),
    ("BIO 150 Lab", 30, {"small": 1.0}, "FR", "09:00", 170),
    ("ECON 210", 90, {"small": 0.8, "medium": 0.2}, "MO,WE,FR", "11:00", 50),
    ("GPU workshop", 30, {"gpu": 1.0}, "FR", "13:00", 120),
    ("PHYS 250 Computational Physics", 45, {"medium": 1.0}, "TU", "16:00", 110),
]


def timetable_ics() -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//hubkit bench//EN"]
    for i, (name, students, mix, days, start, minutes) in enumerate(TIMETABLE):
        hh, mm = (int(x) for x in start.split(":"))
        first = WEEK_START + timedelta(days=["MO", "TU", "WE", "TH", "FR"].index(days.split(",")[0]))
        begin = first.replace(hour=hh, minute=mm)
        lines += [
            "BEGIN:VEVENT",
            f"UID:class-{i}@bench",
            f"SUMMARY:{name}",
            f"DTSTART:{begin:%Y%m%dT%H%M%SZ}",
            f"DTEND:{begin + timedelta(minutes=minutes):%Y%m%dT%H%M%SZ}",
            f"RRULE:FREQ=WEEKLY;BYDAY={days};COUNT=15",
            f"X-HUBKIT-STUDENTS:{students}",
            "X-HUBKIT-PROFILES:" + ",".join(f"{k}={v}" for k, v in mix.items()),
            "X-HUBKIT-LEAD:PT10M",
            "END:VEVENT",
        ]
    return "\r\n".join([*lines, "END:VCALENDAR", ""])


@dataclass
class User:
    arrive: float
    leave: float
    size: str
    ready: float | None = None  # server running
    node: Node | None = None


@dataclass
class Node:
    pool: str
    created: float
    ready_at: float
    users: int = 0
    images: dict[str, float] = field(default_factory=dict)  # image → pulled at (may be in the future)
    unneeded_since: float | None = None
    removed: float | None = None


def make_users(events: list[ClassEvent], rng: random.Random) -> list[User]:
    """Actual attendance varies around the calendar (90-105 %); arrivals within 5 minutes of the start."""
    users: list[User] = []
    for e in events:
        t0 = (e.start - WEEK_START).total_seconds()
        t1 = (e.end - WEEK_START).total_seconds()
        actual = round(e.students * rng.uniform(0.90, 1.05))
        sizes = list(e.mix)
        weights = [e.mix[s] for s in sizes]
        for _ in range(actual):
            size = rng.choices(sizes, weights)[0]
            users.append(User(t0 + rng.uniform(-60, 300), t1 + rng.uniform(0, 600), size))
    users.sort(key=lambda u: u.arrive)
    return users


class Cluster:
    """Pools of nodes, a packing scheduler, the autoscaler, kubelet pulls and one image-pull policy."""

    def __init__(self, pull_policy: str) -> None:
        self.pull_policy = pull_policy  # "ondemand", "z2jh-daemonset" or "hubkit"
        self.nodes: list[Node] = []
        self.placeholders = dict.fromkeys(POOLS, 0)  # wanted placeholder pods per pool
        self.node_seconds = 0.0
        self.menu = merge_menus(
            [
                ImageMenu(
                    images=tuple(
                        ImageEntry(
                            image=IMAGES[p],
                            placements=(
                                Placement(
                                    node_selector={"pool": p},
                                    tolerations=(GPU_TOLERATION,) if p == "gpu" else (),
                                    resources=("nvidia.com/gpu",) if p == "gpu" else (),
                                ),
                            ),
                        )
                        for p in POOLS
                    )
                )
            ]
        )

    def live(self, pool: str) -> list[Node]:
        return [n for n in self.nodes if n.pool == pool and n.removed is None]

    def ready(self, pool: str, now: float) -> list[Node]:
        return [n for n in self.live(pool) if n.ready_at <= now]

    def _node_ready(self, node: Node) -> None:
        if self.pull_policy == "z2jh-daemonset" and node.pool != "gpu":
            # z2jh's continuous puller: every image in turn on every untainted node, not pool-aware.
            t = node.ready_at
            for pool in POOLS:
                t += PULL
                node.images.setdefault(IMAGES[pool], t)

    def prepull(self, now: float) -> None:
        """HubKit: the prepuller's real decisions on the ready nodes."""
        infos = []
        in_flight: dict[str, set[str]] = {}
        for i, n in enumerate(self.nodes):
            if n.removed is not None or n.ready_at > now:
                continue
            name = f"{n.pool}-{i}"
            done = {img for img, t in n.images.items() if t <= now}
            in_flight[name] = {img for img, t in n.images.items() if t > now}
            taints = (
                ({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},)
                if n.pool == "gpu"
                else ()
            )
            resources = frozenset({"cpu", "nvidia.com/gpu"} if n.pool == "gpu" else {"cpu"})
            infos.append(NodeInfo(name, {"pool": n.pool}, taints, resources, frozenset(done), False, True))
        plans = plan_nodes(self.menu, infos)
        wanted = {name: sorted(p.missing - in_flight.get(name, set())) for name, p in plans.items()}
        for name, image in choose_pulls(wanted, in_flight, PullLimits(per_node=1, per_cluster=10)):
            self.nodes[int(name.rsplit("-", 1)[1])].images[image] = now + PULL

    def seat(self, user: User, now: float) -> bool:
        """Place a user on the fullest ready node with a seat not held by another user (packing)."""
        nodes = [n for n in self.ready(user.size, now) if n.users < POOLS[user.size]]
        if not nodes:
            return False
        node = max(nodes, key=lambda n: n.users)
        node.users += 1
        image = IMAGES[user.size]
        pulled = node.images.get(image)
        if pulled is None:  # the kubelet pulls for the user's own pod
            pulled = node.images[image] = now + PULL
        user.ready = max(now, pulled) + STARTUP
        user.node = node
        return True

    def autoscale(self, pending: dict[str, int], now: float) -> None:
        for pool, per_node in POOLS.items():
            seated = sum(n.users for n in self.live(pool))
            demand = seated + pending[pool] + self.placeholders[pool]
            required = math.ceil(demand / per_node)
            live = self.live(pool)
            if required > len(live):
                for _ in range(required - len(live)):
                    node = Node(pool, now, now + NODE_READY)
                    self.nodes.append(node)
                    self._node_ready(node)
            ready = self.ready(pool, now)
            extra = len(live) - required
            empty = sorted((n for n in ready if n.users == 0), key=lambda n: n.created)
            for n in ready:
                if n.users or extra <= 0 or n not in empty[:extra]:
                    n.unneeded_since = None
                elif n.unneeded_since is None:
                    n.unneeded_since = now
                elif now - n.unneeded_since >= SCALE_DOWN_AFTER:
                    n.removed = now
                    extra -= 1

    def tick(self, now: float) -> None:
        self.node_seconds += STEP * sum(1 for n in self.nodes if n.removed is None)


def simulate(
    mode: str, users: list[User], events: list[ClassEvent], static_count: int = 0
) -> tuple[float, float]:
    """Returns (wait_pct, node_hours)."""
    users = [User(u.arrive, u.leave, u.size) for u in users]
    cluster = Cluster("hubkit" if mode == "hubkit" else "z2jh-daemonset")
    sizes = [SizePolicy(p, 0, 500, PULL, (p,)) for p in POOLS]
    if mode == "static":
        cluster.placeholders["small"] = static_count
    pending: list[User] = []
    running: list[User] = []
    arrivals: dict[str, list[datetime]] = {p: [] for p in POOLS}
    i = 0
    t = 0.0
    end = 7 * 86400.0
    next_reconcile = 0.0
    while t < end:
        while i < len(users) and users[i].arrive <= t:
            pending.append(users[i])
            arrivals[users[i].size].append(WEEK_START + timedelta(seconds=users[i].arrive))
            i += 1
        for u in [u for u in running if u.leave <= t]:
            if u.node is not None:
                u.node.users -= 1
            running.remove(u)
        if mode == "hubkit" and t >= next_reconcile:
            now = WEEK_START + timedelta(seconds=t)
            day_ago = now - timedelta(days=1)  # what the broker keeps
            recent = {p: [a for a in arrivals[p] if a > day_ago] for p in POOLS}
            seats = plan(PlanInput(now, sizes, events, recent, NODE_READY, timedelta(minutes=10)))
            for p in POOLS:
                cluster.placeholders[p] = seats[p].count
            next_reconcile += RECONCILE
        still = []
        for u in pending:
            if cluster.seat(u, max(t, u.arrive)):
                running.append(u)
            else:
                still.append(u)
        pending = still
        if mode == "hubkit":
            cluster.prepull(t)
        counts = {p: sum(1 for u in pending if u.size == p) for p in POOLS}
        cluster.autoscale(counts, t)
        cluster.tick(t)
        t += STEP
    waited = sum(1 for u in users if u.ready is None or u.ready - u.arrive > WAIT_LIMIT)
    return 100.0 * waited / len(users), cluster.node_seconds / 3600.0


def main() -> int:
    rng = random.Random(20260914)
    parsed = parse_calendar(
        timetable_ics(), WEEK_START, WEEK_START + timedelta(days=7), timedelta(minutes=15), UTC
    )
    assert not parsed.problems, parsed.problems
    events = [e for e in parsed.events if WEEK_START <= e.start < WEEK_START + timedelta(days=7)]
    users = make_users(events, rng)
    none_wait, none_hours = simulate("none", users, events)
    wait, hours = simulate("hubkit", users, events)
    # z2jh static placeholders: the smallest fixed count given at least HubKit's node-hours (a static
    # placeholder holds a node day and night, so counts jump by ~a node-week; static never gets less).
    lo, hi = 0, 64
    while lo < hi:
        mid = (lo + hi) // 2
        if simulate("static", users, events, mid)[1] < hours:
            lo = mid + 1
        else:
            hi = mid
    count = lo
    static_wait, static_hours = simulate("static", users, events, count)
    below = simulate("static", users, events, count - 1) if count else None
    extra = 100.0 * (hours - none_hours) / none_hours
    print(f"classes={len(events)} static_placeholders={count} (one size: small)")
    if below is not None:
        print(f"static with {count - 1}: wait_pct={below[0]:.2f} node_hours={below[1]:.1f}")
    print(
        f"BENCH class_start students={len(users)} wait_pct={wait:.2f} node_hours={hours:.1f} "
        f"none_wait_pct={none_wait:.2f} none_node_hours={none_hours:.1f} static_wait_pct={static_wait:.2f} "
        f"static_node_hours={static_hours:.1f} extra_node_hours_pct={extra:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
