"""The task queue (huey): SQLite storage under ``instance/`` by default,
Redis when ``REDIS_URL`` is set. ``create_app`` binds it; tasks run inside
the app's context with a database connection of their own."""
import os
from contextlib import contextmanager

from flask import current_app, has_app_context
from huey import Huey
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage
from redis import ConnectionPool

from core import redaction

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
    """huey_consumer adds its log handler after the app is built."""
    redaction.install()


def configure_worker(app, database):
    """Point the queue at the app's storage (immediate mode for tests that ask);
    tasks open connections of ``database``."""
    huey.on_startup()(redact_worker_logs)
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
