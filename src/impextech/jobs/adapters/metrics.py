"""Prometheus metrics of the jobs.

Two sources, each where it is true: queue depth, running jobs, the age of the oldest waiting job
and the dead letters are read from the queue tables at scrape time (the same answer from every
process); runs, failures, retries and postponements are counted by the process that ran them
(Prometheus sums counters across processes; ``impextech worker --metrics-port`` exposes them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from impextech.kernel.db import Database

_QUEUE_STATE = """
SELECT queue_name, status::text, count(*) FROM procrastinate_jobs
 WHERE status IN ('todo', 'doing', 'failed')
 GROUP BY queue_name, status
"""
# A waiting job waits since it was deferred or, when retried or scheduled, since it became due.
_OLDEST = """
SELECT j.queue_name,
       extract(epoch FROM now() - min(greatest(e.at, coalesce(j.scheduled_at, e.at))))
  FROM procrastinate_jobs j
  JOIN procrastinate_events e ON e.job_id = j.id AND e.type = 'deferred'
 WHERE j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())
 GROUP BY j.queue_name
"""


class JobCounters:
    """Per-process counters, incremented by the runtime as jobs end.

    They belong to no registry: whoever serves this process's metrics registers ``collectors``.
    """

    def __init__(self) -> None:
        labels = ["queue", "kind"]
        self.runs = Counter("impextech_job_runs", "Job attempts started", labels, registry=None)
        self.succeeded = Counter(
            "impextech_job_successes", "Job attempts that succeeded", labels, registry=None
        )
        self.failures = Counter(
            "impextech_job_failures", "Job attempts that failed", labels, registry=None
        )
        self.retries = Counter(
            "impextech_job_retries", "Failed attempts scheduled to run again", labels,
            registry=None,
        )  # fmt: skip
        self.postponed = Counter(
            "impextech_job_postponements",
            "Attempts put off without spending one (a partner's breaker was open)",
            labels,
            registry=None,
        )
        self.dead = Counter(
            "impextech_job_deaths", "Jobs moved to the dead letters", labels, registry=None
        )

    @property
    def collectors(self) -> tuple[Counter, ...]:
        return (self.runs, self.succeeded, self.failures, self.retries, self.postponed, self.dead)


class QueueGauges(Collector):
    """Queue-wide gauges, refreshed from the database before each scrape."""

    def __init__(self, database: Database, queues: Callable[[], Iterable[str]]) -> None:
        self._db = database
        # Known queues report 0 rather than vanishing, so dashboards and alerts see them; read
        # at scrape time, since every context declares its job kinds as it is installed.
        self._queues = queues
        self._states: list[tuple[str, str, int]] = []
        self._oldest: list[tuple[str, float]] = []

    async def refresh(self) -> None:
        async with self._db.transaction(None) as conn:
            states = await (await conn.execute(_QUEUE_STATE)).fetchall()
            oldest = await (await conn.execute(_OLDEST)).fetchall()
        self._states = [(str(r[0]), str(r[1]), int(r[2])) for r in states]
        self._oldest = [(str(r[0]), float(r[1])) for r in oldest]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {
            "todo": GaugeMetricFamily(
                "impextech_jobs_queued", "Jobs waiting in each queue", labels=["queue"]
            ),
            "doing": GaugeMetricFamily(
                "impextech_jobs_running", "Jobs running, by queue", labels=["queue"]
            ),
            "failed": GaugeMetricFamily(
                "impextech_jobs_dead", "Dead letters (attempts exhausted), by queue",
                labels=["queue"],
            ),
        }  # fmt: skip
        counts = {(queue, state): count for queue, state, count in self._states}
        names = sorted({*self._queues(), *(queue for queue, _ in counts)})
        for state, family in families.items():
            for queue in names:
                family.add_metric([queue], counts.get((queue, state), 0))
        oldest = GaugeMetricFamily(
            "impextech_jobs_oldest_waiting_seconds",
            "Age of the oldest job due and not yet picked up, by queue",
            labels=["queue"],
        )
        for queue, age in self._oldest:
            oldest.add_metric([queue], age)
        yield from families.values()
        yield oldest
