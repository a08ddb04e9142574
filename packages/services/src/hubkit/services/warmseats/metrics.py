"""Prometheus metrics of the warm-seat broker (one registry per instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["WarmSeatsMetrics"]


class WarmSeatsMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.planned = Gauge(
            "hubkit_warmseats_planned", "Warm seats the plan asks for.", ["size"], registry=r
        )
        self.term = Gauge(
            "hubkit_warmseats_plan_term",
            "Each term of the plan (baseline, scheduled, recent) per size.",
            ["size", "term"],
            registry=r,
        )
        self.placeholders = Gauge(
            "hubkit_warmseats_placeholders",
            "Placeholder pods by state: running (a warm seat) or pending (asking the autoscaler for a node).",
            ["size", "state"],
            registry=r,
        )
        self.consumed = Counter(
            "hubkit_warmseats_consumed",
            "Warm seats taken by a user pod (a placeholder preempted), by the user's hub.",
            ["hub", "size"],
            registry=r,
        )
        self.arrivals = Counter(
            "hubkit_warmseats_arrivals", "User pods seen, by hub and seat size.", ["hub", "size"], registry=r
        )
        self.calendar_problems = Gauge(
            "hubkit_warmseats_calendar_problems", "Calendar events skipped as unreadable.", registry=r
        )
        self.reconciles = Counter(
            "hubkit_warmseats_reconciles", "Reconcile passes by result.", ["result"], registry=r
        )
