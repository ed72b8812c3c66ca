"""What every benchmark stands on: the sizes and targets, the environment the
app runs in, the benchmark's PostgreSQL and Redis databases, the processes
it starts (gunicorn, the FCM stand-in) and their CPU and memory."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import psutil
import psycopg2
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import appside

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
SECRET = "bench-secret-" + "s" * 40
RECEIPT_SIGNING_KEY = Ed25519PrivateKey.generate().private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()

SIZES = {
    "full": {"users": 200, "wrk_seconds": 20, "connections": 32, "checks": 20_000, "push_devices": 100_000,
             "audience_users": 1_000_000, "consumers": 2, "consumer_threads": 2, "campaign_timeout": 3600},
    "smoke": {"users": 20, "wrk_seconds": 2, "connections": 8, "checks": 500, "push_devices": 500,
              "audience_users": 5_000, "consumers": 1, "consumer_threads": 2, "campaign_timeout": 120},
}
TARGETS = {"ingest_ratio": 0.5, "batch_multiple": 20, "push_ratio": 0.8, "preview_seconds": 2.0,
           "worker_peak_mb": 300}


def log(message):
    print(f"[bench] {message}", flush=True)


# -- environment ------------------------------------------------------------------------

def base_env(instance, **extra):
    """The environment of an app process: production settings on the
    benchmark's databases, rate limits out of the way, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "BENCH_"))}
    env.update({
        "APP_ENV": "production", "SECRET_KEY": SECRET, "JWT_SECRET_KEY": SECRET, "DATABASE_URL": PG_URL,
        "RECEIPT_SIGNING_KEY": RECEIPT_SIGNING_KEY,
        "REDIS_URL": REDIS_URL, "INSTANCE_PATH": instance, "ACCESS_TOKEN_MINUTES": "600", "DB_POOL_SIZE": "8",
        "RATELIMIT_LOCATIONS": "100000000 per minute", "RATELIMIT_LOCATION_BATCHES": "100000000 per minute",
        "PUSH_RATE_PER_MINUTE": "100000000", "PYTHONPATH": ROOT,
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def bench_app(instance):
    """The app in this process, on the benchmark database (for seeding and
    in-process measurements)."""
    os.environ.update({k: v for k, v in base_env(instance).items() if k not in ("PYTHONPATH",)})
    return appside.create_app()


# -- databases --------------------------------------------------------------------------

def pg(sql, params=None, url=PG_URL):
    """Run ``sql`` on a connection of its own, in autocommit; its rows, if any."""
    connection = psycopg2.connect(url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else None
    finally:
        connection.close()


def ensure_database():
    admin_url = PG_URL.rsplit("/", 1)[0] + "/postgres"
    name = PG_URL.rsplit("/", 1)[1]
    if not pg("SELECT 1 FROM pg_database WHERE datname = %s", (name,), url=admin_url):
        pg(f'CREATE DATABASE "{name}"', url=admin_url)


def reset_database(instance):
    """Empty schema, migrated; the Redis database emptied."""
    pg("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    redis.Redis.from_url(REDIS_URL).flushdb()
    subprocess.run([sys.executable, "-m", "flask", "--app", appside.FLASK_APP, "migrate"], cwd=ROOT, check=True,
                   env=base_env(instance), stdout=subprocess.DEVNULL)


def checkpoint():
    """Flush PostgreSQL's dirty buffers before a measured phase, so that a
    checkpoint left over from resetting and seeding the database (minutes of
    writes in the background) does not land in the middle of it."""
    pg("CHECKPOINT")


# -- processes --------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stop(process):
    """Stop the process group that ``process`` leads: SIGTERM, SIGKILL after 20 s."""
    if process and process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def gunicorn_layout():
    """Two workers per core, four threads each; BENCH_GUNICORN="workers threads"
    tries another layout (the ceiling and the routes always share one)."""
    workers, threads = 2 * (os.cpu_count() or 1), 4
    if os.environ.get("BENCH_GUNICORN"):
        workers, threads = (int(n) for n in os.environ["BENCH_GUNICORN"].split())
    return {"workers": workers, "worker_class": "gthread" if threads > 1 else "sync", "threads": threads}


def start_gunicorn(instance, port):
    layout = gunicorn_layout()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(layout["workers"]), "--worker-class",
         layout["worker_class"], "--threads", str(layout["threads"]), "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning", "bench.wsgi:app()"],
        cwd=ROOT, env=base_env(instance), start_new_session=True)
    return process, layout


def start_fcm_server(instance):
    """The FCM-protocol stand-in in a process of its own; (process, the
    JSON line it printed: base URL, project id, credentials file)."""
    process = subprocess.Popen([sys.executable, "-m", "bench.fcm_server", os.path.join(instance, "sa.json")],
                               cwd=ROOT, env=base_env(instance), stdout=subprocess.PIPE, text=True,
                               start_new_session=True)
    info = json.loads(process.stdout.readline())
    return process, info


# -- CPU and memory ---------------------------------------------------------------------

def cpu_seconds(pid):
    """User and system CPU seconds of a process and its reaped children."""
    return _cpu_total(psutil.Process(pid).cpu_times())


def _cpu_total(times):
    return times.user + times.system + times.children_user + times.children_system


PROGRAMS = (("gunicorn", "gunicorn"), ("postgres", "postgres"), ("redis", "redis-server"))  # (name, in its command)


def cpu_by_program():
    """CPU seconds so far of the API (gunicorn), PostgreSQL and Redis processes on this machine."""
    totals = {name: 0.0 for name, _ in PROGRAMS}
    for process in psutil.process_iter(["cmdline", "cpu_times"]):
        command, times = process.info["cmdline"], process.info["cpu_times"]
        if not command or times is None:
            continue
        command = " ".join(command)
        name = next((name for name, needle in PROGRAMS if needle in command), None)
        if name:
            totals[name] += _cpu_total(times)
    return totals


def peak_rss_mb(pid):
    """The kernel's high-water mark of a process's resident memory (VmHWM),
    in MB. psutil reports no peak on Linux; sampling its current rss would
    miss peaks between samples, and the ``ru_maxrss`` that ``wait4`` returns
    also counts the memory of the bench process the consumer was forked from."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
