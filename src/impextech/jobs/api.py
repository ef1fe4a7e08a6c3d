"""The jobs context's public facade: declare kinds, enqueue in a transaction, run workers."""

from impextech.jobs.adapters.http import JobsWeb, job_location
from impextech.jobs.adapters.http import router as jobs_router
from impextech.jobs.adapters.metrics import JobCounters, QueueGauges
from impextech.jobs.adapters.queue import ProcrastinateQueue, UnknownJobKind
from impextech.jobs.adapters.runtime import JobRuntime, WorkerProcess
from impextech.jobs.adapters.sql import SqlJobScheduler, SqlJobsUnitOfWork
from impextech.jobs.domain.model import (
    Backoff,
    Job,
    JobKind,
    JobNotDead,
    JobNotFound,
    JobState,
    JsonObject,
    PermanentJobError,
    RetryLater,
)
from impextech.jobs.service.jobs import JobsService, discard_dead, retry_dead
from impextech.jobs.service.ports import Handler, JobContext, JobRequest, JobScheduler

__all__ = [
    "Backoff",
    "Handler",
    "Job",
    "JobContext",
    "JobCounters",
    "JobKind",
    "JobNotDead",
    "JobNotFound",
    "JobRequest",
    "JobRuntime",
    "JobScheduler",
    "JobState",
    "JobsService",
    "JobsWeb",
    "JsonObject",
    "PermanentJobError",
    "ProcrastinateQueue",
    "QueueGauges",
    "RetryLater",
    "SqlJobScheduler",
    "SqlJobsUnitOfWork",
    "UnknownJobKind",
    "WorkerProcess",
    "discard_dead",
    "job_location",
    "jobs_router",
    "retry_dead",
]
