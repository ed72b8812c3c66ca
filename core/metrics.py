"""Every Prometheus metric of the app, defined here once, so that any layer
counts without importing upward. Labels name routes, permissions, reasons,
providers and outcomes: never a user, device, token or address.

Gunicorn's workers and the task consumers each count in their own process;
with ``PROMETHEUS_MULTIPROC_DIR`` set (``python app.py`` sets one up under
``instance/``) they write to files there and ``/metrics`` adds them up.
Every metric has labels, so no value exists before a process counts: a
process may switch to that directory after importing this module
(``use_directory``) as long as it has counted nothing yet.

Gauges that describe the whole system (queue depth, campaigns by status)
are not counted by anyone: the process that answers the scrape reads them
from their source (``live``)."""
import glob
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily

DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
UNMATCHED_ROUTE = "unmatched"  # a 404 of the router: its raw path is not a label

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered, by route (the URL rule) and status.",
    ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds", "Time from the first request hook to the response, by route.",
    ["method", "route"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
CONSENT_CHECKS = Counter(
    "consent_checks_total", "Per-user consent checks the engine answered, by permission.", ["permission"])
CONSENT_REFUSALS = Counter(
    "consent_refusals_total", "Consent checks answered 'not in effect', by permission and reason.",
    ["permission", "reason"])
LOCATIONS = Counter(
    "locations_total", "Location reports by outcome: stored, duplicate (its time is stored already), "
    "refused (location not in effect) or rejected (invalid item of a batch).", ["outcome"])
PUSH_MESSAGES = Counter(
    "push_messages_total", "Push messages handed to a provider, by provider and outcome (delivered, "
    "token_invalid, retry, failed, auth_error; unknown when the provider raised mid-send).",
    ["provider", "outcome"])
FANOUT_SLICES = Counter(
    "push_fanout_slices_total", "Fan-out slices: planned, and slice runs by how they ended "
    "(done, later, paused, stopped).", ["event"])
TASKS = Counter(
    "worker_tasks_total", "Queue tasks run by the consumers, by task and outcome.", ["task", "outcome"])
TASK_DURATION = Histogram(
    "worker_task_duration_seconds", "Run time of queue tasks, by task.", ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300))


class LiveGauges:
    """Gauges read from their source at each scrape: ``add(name, help,
    labels, read)`` where ``read()`` returns ``{label values tuple: value}``
    (or a number when there are no labels). A source that fails is left
    out of that scrape instead of failing it."""

    def __init__(self):
        self.gauges = {}

    def add(self, name, documentation, labels, read):
        self.gauges[name] = (documentation, tuple(labels), read)

    def collect(self):
        for name, (documentation, labels, read) in self.gauges.items():
            try:
                samples = read()
            except Exception:  # a scrape must still answer while, say, the queue is away
                continue
            if samples is None:  # nothing to report (no heartbeat yet)
                continue
            family = GaugeMetricFamily(name, documentation, labels=list(labels))
            if not labels:
                family.add_metric([], samples)
            else:
                for key, value in samples.items():
                    family.add_metric([str(part) for part in key], value)
            yield family


def directory():
    """The multiprocess directory this process writes to, or None."""
    return os.environ.get(DIRECTORY_VARIABLE) or None


def use_directory(path):
    """Count into files under ``path`` from now on, in this process and the
    processes it starts or forks (gunicorn's workers, the task consumer).
    Files left by an earlier run are removed: counters start from zero with
    the server, as Prometheus expects of a restart."""
    os.makedirs(path, exist_ok=True)
    for leftover in glob.glob(os.path.join(path, "*.db")):
        os.remove(leftover)
    os.environ[DIRECTORY_VARIABLE] = path
    values.ValueClass = values.get_value_class()


def mark_process_dead(pid):
    """gunicorn's ``child_exit``: a dead worker's live gauges stop counting
    (its counters stay, they are history)."""
    if directory():
        multiprocess.mark_process_dead(pid)


def exposition(live=None):
    """The scrape's body: every process's counts when a multiprocess
    directory is set, this process's otherwise, and the live gauges."""
    if directory():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(REGISTRY))
    if live is not None:
        registry.register(live)
    return generate_latest(registry)


class _Forward:
    """This process's default registry inside a scrape's own registry."""

    def __init__(self, source):
        self.source = source

    def collect(self):
        return self.source.collect()
