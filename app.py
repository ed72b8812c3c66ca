"""The application factory. ``python app.py`` applies pending migrations and
serves the API with gunicorn and a task consumer on the embedded defaults."""
import logging
import os
import signal
import subprocess
import sys

from flask import Flask
from gunicorn.app.base import BaseApplication

from auth.sessions import init_revocations
from blueprints.base import SECURITY_SCHEMES, register_jwt_callbacks
from core import config as settings
from core.database import connect_database, register_connection_hooks
from core.extensions import api, jwt, limiter
from core.http import ErrorEnvelopeSchema, register_error_handlers
from core.worker import configure_worker
from models.base import db

ROOT = os.path.dirname(os.path.abspath(__file__))


def create_app(config=None):
    overrides = dict(config or {})
    app = Flask(
        __name__,
        instance_path=overrides.get("INSTANCE_PATH") or os.environ.get("INSTANCE_PATH") or os.path.join(ROOT, "instance"),
        instance_relative_config=True,
    )
    load_config(app, overrides)
    register_proxy_fix(app)
    register_log_redaction(app)
    register_observability(app)
    register_extensions(app)
    register_push_provider(app)
    register_readiness(app)
    register_blueprints(app)
    register_console(app)
    register_error_handlers(app)
    register_response_policy(app)
    register_commands(app)
    register_tasks(app)
    register_withdrawal_effects(app)
    return app


def load_config(app, overrides):
    os.makedirs(app.instance_path, exist_ok=True)
    values = settings.from_environment()
    values.update(overrides)
    settings.resolve_secrets(values, app.instance_path)
    for name, value in settings.derived_settings(values, app.instance_path).items():
        if name == "DATABASE_URL" or name not in overrides:
            values[name] = value
    app.config.update(values)
    app.json.sort_keys = False


def register_proxy_fix(app):
    """Behind ``PROXY_FIX_HOPS`` reverse proxies, the client's address,
    scheme and host are the ones they forwarded: /metrics' loopback check
    and the console's secure-cookie warning then see the real client, and
    every request no longer looks local."""
    hops = int(app.config["PROXY_FIX_HOPS"])
    if hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def register_log_redaction(app):
    from core import redaction

    redaction.register(app)


def register_observability(app):
    """First, so that its request hooks time and count every request,
    those a later hook refuses included."""
    from core import logs, observability

    if app.config["LOG_FORMAT"] not in logs.FORMATS:
        raise settings.ConfigError(f"LOG_FORMAT must be one of {', '.join(logs.FORMATS)}, "
                                   f"got {app.config['LOG_FORMAT']!r}")
    observability.register(app)


def register_extensions(app):
    db.initialize(connect_database(app.config["DATABASE_URL"], app.config["DB_POOL_SIZE"],
                                   app.config["DB_CONNECT_TIMEOUT_SECONDS"]))
    register_connection_hooks(app, db)
    jwt.init_app(app)
    register_jwt_callbacks(jwt)
    limiter.init_app(app)
    init_revocations(app)
    configure_worker(app, db)
    app.config["API_SPEC_OPTIONS"] = {
        "components": {"securitySchemes": SECURITY_SCHEMES},
        "info": {"description": "Consent-aware backend of the shopping app. Every error is the envelope "
                                "`{\"error\": {\"code\", \"message\", \"details\"}}`. Request bodies are at "
                                "most 1 MiB (413 above); batches at most 500 items; paged lists at most 100 "
                                "items per page; strings have the lengths their schemas state; numbers are "
                                "finite; event times lie between 2000-01-01 and 5 minutes from now."},
    }
    api.ERROR_SCHEMA = ErrorEnvelopeSchema
    api.init_app(app)


def register_push_provider(app):
    from push import sender

    sender.register(app)


def register_readiness(app):
    """What ``/readyz`` checks (and the console shows), and the gauges
    ``/metrics`` reads at each scrape."""
    from core import metrics, readiness
    from models.base import database_check
    from models.push import Campaign, Delivery
    from models.schema import migrations_check
    from push import sender

    readiness.register(app, "database", database_check)
    readiness.register(app, "migrations", migrations_check)
    if app.config["REDIS_URL"]:
        readiness.register(app, "redis", readiness.redis_check)
    readiness.register(app, "push", lambda: sender.provider().configuration_fault())
    readiness.register(app, "worker", readiness.worker_check)

    live = metrics.LiveGauges()
    live.add("worker_queue_depth", "Tasks waiting in the queue.", (), readiness.queue_depth)
    live.add("worker_heartbeat_age_seconds", "Seconds since a task consumer last wrote its heartbeat.", (),
             readiness.heartbeat_age)
    live.add("push_campaigns", "Campaigns by status, one-user notifications included.", ("status",),
             lambda: {(status,): count for status, count in Campaign.count_by_status().items()})
    live.add("push_sending_deliveries", "Deliveries of the campaigns sending now, by status.", ("status",),
             lambda: {(status,): count for status, count in Delivery.counts_while_sending().items()})
    app.extensions["metrics_live"] = live


def register_blueprints(app):
    from blueprints import admin, auth, base, consents, devices, docs, health, installations, me, push

    base.register_request_hooks(app)
    app.register_blueprint(health.blp)
    app.register_blueprint(docs.blp)
    for blueprint in (auth.blp, me.blp, consents.blp, devices.blp, installations.blp, admin.blp, push.blp):
        api.register_blueprint(blueprint)


def register_console(app):
    import console

    console.register(app)


def register_response_policy(app):
    from core import http

    http.register(app)


def register_commands(app):
    from auth.commands import create_admin_command
    from collection.retention import purge_command
    from consent.ledger import verify_ledger_command
    from core import cli
    from models.schema import migrate_command

    cli.register(app, (migrate_command, create_admin_command, cli.worker_command, verify_ledger_command, purge_command))


def register_tasks(app):
    import collection
    from auth import sessions
    from core import worker
    from core.worker import huey
    from push import tasks as push_tasks
    from rights import erasure

    from collection import retention

    for package in (worker, push_tasks, collection, sessions, erasure):
        package.register_tasks(huey)
    erasure.register_purges(retention.register_purge)


def register_withdrawal_effects(app):
    """Every effect of a withdrawal, registered here and nowhere else; an app
    with a permission that stores data and no effect to remove it does not start."""
    import collection
    from consent.effects import effects
    from push import campaigns

    collection.register_effects(effects)
    campaigns.register_effects(effects)
    missing = effects.missing()
    if missing:
        raise RuntimeError(f"no withdrawal effect for {', '.join(missing)}: their data would outlive a withdrawal")


class TaskConsumer:
    """The task consumer beside the API: one ``flask worker`` process,
    started by gunicorn's master when it is ready and stopped when it exits.
    A process of its own, not a thread of the master: the master forks
    workers, and a fork copies no running thread."""

    def __init__(self, threads):
        self.threads = threads
        self.process = None

    def start(self, _arbiter=None):
        command = [sys.executable, "-m", "flask", "--app", "app", "worker", "--workers", str(self.threads)]
        self.process = subprocess.Popen(command, cwd=ROOT)
        logging.getLogger("app").info("task consumer started (pid %s)", self.process.pid)

    def stop(self, _arbiter=None):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # huey's graceful stop: running tasks finish
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


class ApiServer(BaseApplication):
    """gunicorn with its settings given here, each worker building the app
    with ``create_app()`` as in production."""

    def __init__(self, settings):
        self.settings = settings
        super().__init__()

    def load_config(self):
        for name, value in self.settings.items():
            self.cfg.set(name, value)

    def load(self):
        return create_app()


def serve():
    """Migrate once, then serve the API with gunicorn and run one task
    consumer beside it, until interrupted (``make run``). Every process
    counts metrics into ``instance/prometheus`` (``/metrics`` adds them up)
    and logs in ``LOG_FORMAT``, gunicorn's access log included."""
    from core import logs, metrics
    from models.schema import migrate

    log_format = settings.from_environment()["LOG_FORMAT"]
    logs.configure(log_format)
    app = create_app()
    metrics.use_directory(os.environ.get(metrics.DIRECTORY_VARIABLE) or os.path.join(app.instance_path, "prometheus"))
    applied = migrate()
    if applied:
        logging.getLogger("app").info("applied migrations: %s", ", ".join(applied))
    consumer = TaskConsumer(app.config["WORKER_THREADS"])
    ApiServer({
        "bind": f"{app.config['HOST']}:{app.config['PORT']}",
        "worker_class": "gthread",
        "threads": 8,
        "control_socket_disable": True,  # one fixed path under $HOME would be shared by every instance
        "accesslog": "-",
        "logger_class": logs.access_logger_class(app.config["LOG_FORMAT"]),
        "when_ready": consumer.start,
        "on_exit": consumer.stop,
        "child_exit": lambda _arbiter, worker: metrics.mark_process_dead(worker.pid),
    }).run()


def __getattr__(name):
    """``huey_consumer app.huey``: the task queue of an app built from the
    environment, which binds the database and the queue storage and
    registers every task. Only that lookup builds an app."""
    if name != "huey":
        raise AttributeError(name)
    create_app()
    from core.worker import huey

    globals()["huey"] = huey
    return huey


if __name__ == "__main__":
    serve()
