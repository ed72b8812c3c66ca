"""The task queue (huey): SQLite storage under ``instance/`` by default,
Redis when ``REDIS_URL`` is set. ``create_app`` binds it; tasks run inside
the app's context with a database connection of their own."""
import logging
import os
import time
from contextlib import contextmanager

from flask import current_app, has_app_context
from huey import Huey, crontab
from huey import signals as huey_signals
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage
from redis import ConnectionPool

from core import metrics, redaction

QUEUE_READ_TIMEOUT = 1  # seconds a consumer's blocking pop waits for a task
huey = Huey("mobile-backend", storage_class=MemoryStorage, utc=True)
huey.flask_app = None
huey.database = None  # the app's database proxy, bound by configure_worker


class QueuedTask:
    """A function that runs on the queue once ``bind`` registered it with
    huey (``create_app`` does, through each package's ``register_tasks``).
    Defining one registers nothing; calling one that was never bound fails
    instead of silently running nowhere."""

    def __init__(self, function, periodic=None, **options):
        self.function, self.periodic, self.options = function, periodic, options
        self.task = None
        self.__name__, self.__doc__ = function.__name__, function.__doc__

    def bind(self, queue):
        if self.task is None:
            if self.periodic is not None:
                self.task = queue.periodic_task(self.periodic, **self.options)(self.function)
            else:
                self.task = queue.task(**self.options)(self.function)
        return self.task

    def _bound(self):
        if self.task is None:
            raise RuntimeError(f"task {self.__name__} is not registered with the queue (create_app registers it)")
        return self.task

    def __call__(self, *args, **kwargs):
        return self._bound()(*args, **kwargs)

    def __getattr__(self, name):  # huey's TaskWrapper API: schedule, call_local, ...
        if name.startswith("__") or name in ("function", "periodic", "options", "task"):
            raise AttributeError(name)
        return getattr(self._bound(), name)


def queued(periodic=None, **options):
    """Decorator: ``function`` as a ``QueuedTask`` (huey's options as is)."""
    return lambda function: QueuedTask(function, periodic, **options)


def redact_worker_logs():
    """huey_consumer adds its log handler after the app is built: it gets
    the app's log format and the redaction filter."""
    from core import logs

    if huey.flask_app is not None:
        logs.apply_format(huey.flask_app.config["LOG_FORMAT"])
    redaction.install()


# -- one line and a count per task run -------------------------------------------

TASK_LOG = logging.getLogger("app.task")
ENDINGS = (huey_signals.SIGNAL_COMPLETE, huey_signals.SIGNAL_ERROR, huey_signals.SIGNAL_CANCELED,
           huey_signals.SIGNAL_LOCKED, huey_signals.SIGNAL_TIMEOUT, huey_signals.SIGNAL_RATE_LIMITED,
           huey_signals.SIGNAL_INTERRUPTED)
_started = {}  # task id -> monotonic start, between its "executing" and its ending signal


def _task_started(signal, task, *args):
    _started[task.id] = time.monotonic()


def _task_ended(signal, task, *args):
    """The task's name, id, outcome and run time; never its arguments (user ids, say)."""
    seconds = time.monotonic() - _started.pop(task.id, time.monotonic())
    metrics.TASKS.labels(task.name, signal).inc()
    metrics.TASK_DURATION.labels(task.name).observe(seconds)
    TASK_LOG.info("%s %s %.1f ms", task.name, signal, seconds * 1000, extra={
        "task": task.name, "task_id": task.id, "outcome": signal, "duration_ms": round(seconds * 1000, 1)})


_counting = []


def count_tasks(queue):
    if queue not in _counting:
        queue.signal(huey_signals.SIGNAL_EXECUTING)(_task_started)
        queue.signal(*ENDINGS)(_task_ended)
        _counting.append(queue)


# -- the worker's heartbeat and the queue's depth --------------------------------

HEARTBEAT_KEY = "worker-heartbeat"


def beat():
    """Record that a task consumer is alive, in the queue's own storage
    (SQLite or Redis): a consumer that can take tasks can write it."""
    huey.put(HEARTBEAT_KEY, time.time())


def beat_on_startup():
    beat()


@queued(periodic=crontab(minute="*"))
def write_heartbeat():
    """Every minute, as each consumer's scheduler queues it: a heartbeat
    older than a few minutes means no consumer runs, or the queue is so far
    behind that this task waits that long."""
    beat()


def heartbeat_age():
    """Seconds since the newest heartbeat, or None when there is none."""
    written = huey.get(HEARTBEAT_KEY, peek=True)
    return None if written is None else max(time.time() - written, 0.0)


def queue_depth():
    """Tasks waiting to be taken (scheduled ones not counted)."""
    return huey.pending_count()


def runs_inline():
    """Immediate mode (tests): every task runs in the caller, so there is
    no consumer to wait for."""
    return bool(huey._immediate)


def register_tasks(queue):
    write_heartbeat.bind(queue)
    queue.on_startup()(beat_on_startup)


def configure_worker(app, database):
    """Point the queue at the app's storage (immediate mode for tests that ask);
    tasks open connections of ``database``."""
    huey.on_startup()(redact_worker_logs)
    count_tasks(huey)
    if app.config.get("HUEY_IMMEDIATE"):
        huey.storage_class, huey.storage_kwargs = MemoryStorage, {}
        huey._immediate = True
    elif app.config["REDIS_URL"]:
        huey.storage_class, huey.storage_kwargs = RedisStorage, {
            "connection_pool": redis_pool(app.config), "read_timeout": QUEUE_READ_TIMEOUT}
        huey._immediate = False
    else:
        filename = app.config.get("HUEY_SQLITE_FILE") or os.path.join(app.instance_path, "huey.db")
        huey.storage_class, huey.storage_kwargs = SqliteStorage, {"filename": filename}
        huey._immediate = False
    huey.storage = huey.create_storage()
    huey.flask_app = app
    huey.database = database


def redis_pool(config):
    """The queue's connections, with the app's Redis timeouts; a read also
    waits out the consumer's blocking pop."""
    options = dict(config["REDIS_CLIENT_OPTIONS"])
    options["socket_timeout"] += QUEUE_READ_TIMEOUT
    return ConnectionPool.from_url(config["REDIS_URL"], **options)


@contextmanager
def task_context():
    """App context and a database connection for the length of a task (the
    caller's connection when a task runs inline, in immediate mode)."""
    app = current_app._get_current_object() if has_app_context() else huey.flask_app
    with app.app_context():
        database = huey.database
        opened = database.is_closed()
        if opened:
            database.connect()
        try:
            yield
        finally:
            if opened and not database.is_closed():
                database.close()
