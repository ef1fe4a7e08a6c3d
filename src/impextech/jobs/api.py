"""The jobs context's public facade: what other contexts need to declare and queue jobs.

A context declares its job kinds (and, in a worker, their handlers) in the ``JobRegistry``
(``require(JOB_REGISTRY)``), and queues jobs inside its own transaction through
``JobScheduling`` (``require(JOB_SCHEDULING)``). The platform runs workers with
``worker_process``.
"""

from impextech.jobs.adapters.http import job_location
from impextech.jobs.adapters.registry import JOB_REGISTRY, NOOP, JobRegistry
from impextech.jobs.adapters.scheduling import JOB_SCHEDULING, JobScheduling
from impextech.jobs.adapters.worker import WorkerProcess, worker_process
from impextech.jobs.domain.model import (
    Backoff,
    JobKind,
    JsonObject,
    PermanentJobError,
    RetryLater,
)
from impextech.jobs.service.ports import Handler, JobContext, JobRequest, JobScheduler

__all__ = [
    "JOB_REGISTRY",
    "JOB_SCHEDULING",
    "NOOP",
    "Backoff",
    "Handler",
    "JobContext",
    "JobKind",
    "JobRegistry",
    "JobRequest",
    "JobScheduler",
    "JobScheduling",
    "JsonObject",
    "PermanentJobError",
    "RetryLater",
    "WorkerProcess",
    "job_location",
    "worker_process",
]
