"""Readiness: named checks that ``create_app`` registers and ``/readyz``
(and the console) run. A check is a function of no arguments, called in
the app's context, that returns None when its part is ready and otherwise
what is wrong (a short string or a dict); one that raises is not ready,
named by its exception's type (never its text, which can quote a value).
Beside the checks, the queue's depth and the age of the worker's
heartbeat, which the overview and ``/metrics`` show as well."""
from dataclasses import dataclass

from flask import current_app

from core import worker


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    detail: object = None


def register(app, name, check):
    """Add ``check`` to ``app``'s checks under ``name`` (replacing one of that name)."""
    app.extensions.setdefault("readiness", {})[name] = check


def run():
    """Every check of the current app, in registration order: ``[Result]``."""
    results = []
    for name, check in current_app.extensions.get("readiness", {}).items():
        try:
            detail = check()
        except Exception as error:  # a check that cannot even run is a failed check
            detail = type(error).__name__
        results.append(Result(name, detail is None, detail))
    return results


def failures(results):
    """``{name: detail}`` of the checks that failed."""
    return {result.name: result.detail for result in results if not result.ok}


def queue_depth():
    """Tasks waiting in the queue (not counting those scheduled for later)."""
    return worker.queue_depth()


def heartbeat_age():
    """Seconds since a task consumer last wrote its heartbeat, or None if none ever did."""
    return worker.heartbeat_age()


def redis_check():
    """Redis answers a PING within ``REDIS_TIMEOUT_SECONDS``."""
    import redis

    app = current_app._get_current_object()
    client = app.extensions.get("readiness_redis")
    if client is None:
        client = app.extensions["readiness_redis"] = redis.Redis.from_url(
            app.config["REDIS_URL"], **app.config["REDIS_CLIENT_OPTIONS"])
    try:
        client.ping()
    except redis.exceptions.RedisError as error:
        return f"no answer from Redis ({type(error).__name__})"
    return None


def worker_check():
    """The worker is alive when its heartbeat is fresher than
    ``WORKER_HEARTBEAT_SECONDS``; in immediate mode tasks run inline."""
    if worker.runs_inline():
        return None
    age = heartbeat_age()
    limit = current_app.config["WORKER_HEARTBEAT_SECONDS"]
    if age is None:
        return "no task consumer has written a heartbeat"
    if age > limit:
        return f"the last heartbeat is {age:.0f} s old (stale after {limit} s)"
    return None
