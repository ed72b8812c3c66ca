"""Benchmarks against PostgreSQL and Redis on this machine. Each figure is a
ratio against a ceiling measured in the same run. ``python -m bench.run``
(full) or ``--smoke`` (tiny sizes, under a minute, for CI). Prints a table
and writes bench/results.json."""
import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import psycopg2  # noqa: E402

PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
SECRET = "bench-secret-" + "s" * 40

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


# -- environment -------------------------------------------------------------------

def base_env(instance, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "BENCH_"))}
    env.update({
        "APP_ENV": "production", "SECRET_KEY": SECRET, "JWT_SECRET_KEY": SECRET, "DATABASE_URL": PG_URL,
        "REDIS_URL": REDIS_URL, "INSTANCE_PATH": instance, "ACCESS_TOKEN_MINUTES": "600", "DB_POOL_SIZE": "8",
        "RATELIMIT_LOCATIONS": "100000000 per minute", "RATELIMIT_LOCATION_BATCHES": "100000000 per minute",
        "PUSH_RATE_PER_MINUTE": "100000000", "PYTHONPATH": ROOT,
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


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
    import redis

    pg("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    redis.Redis.from_url(REDIS_URL).flushdb()
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", "migrate"], cwd=ROOT, check=True,
                   env=base_env(instance), stdout=subprocess.DEVNULL)


def bench_app(instance):
    """The app in this process, on the benchmark database (for seeding and
    in-process measurements)."""
    from app import create_app

    os.environ.update({k: v for k, v in base_env(instance).items() if k not in ("PYTHONPATH",)})
    return create_app()


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
    if process and process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def cpu_seconds(pid):
    """utime + stime of a process and its reaped children, from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- wrk ------------------------------------------------------------------------------

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def cpu_by_program():
    """CPU seconds so far of the API (gunicorn), PostgreSQL and Redis processes on this machine."""
    totals = {"gunicorn": 0.0, "postgres": 0.0, "redis": 0.0}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            command = open(f"/proc/{entry}/cmdline", "rb").read().decode(errors="replace")
            seconds = cpu_seconds(entry)
        except OSError:
            continue
        name = next((n for n, needle in (("gunicorn", "gunicorn"), ("postgres", "postgres"), ("redis", "redis-server"))
                     if needle in command), None)
        if name:
            totals[name] += seconds
    return totals


def run_wrk(port, mode, seconds, connections, devices_file, threads=2, batch=500):
    """wrk's figures, plus the CPU milliseconds each request cost the API,
    PostgreSQL, Redis and wrk itself (what limits a figure on shared cores)."""
    env = {**os.environ, "BENCH_MODE": mode, "BENCH_DEVICES": devices_file, "BENCH_THREADS": str(threads),
           "BENCH_BASE_EPOCH": str(int(time.time()) - 60), "BENCH_BATCH": str(batch)}
    before, children = cpu_by_program(), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
                          "-s", os.path.join(ROOT, "bench", "load.lua"), f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True, env=env, check=True)
    text = out.stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}
    for pct in ("50", "99"):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", text).groups()
        result[f"p{pct}_ms"] = round(float(value) * UNITS[unit], 2)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    result["errors"] = int(errors.group(1)) if errors else 0
    result["requests"] = int(re.search(r"(\d+) requests in", text).group(1))
    after, children_after = cpu_by_program(), resource.getrusage(resource.RUSAGE_CHILDREN)
    spent = {name: after[name] - before[name] for name in after}
    spent["wrk"] = (children_after.ru_utime + children_after.ru_stime) - (children.ru_utime + children.ru_stime)
    result["cpu_ms_per_request"] = {name: round(value / max(result["requests"], 1) * 1000, 3)
                                    for name, value in spent.items()}
    if result["errors"]:
        log(f"wrk {mode}: {result['errors']} error responses\n{out.stderr[:600]}")
    return result


# -- 1, 2, 5: HTTP ingest and consent under gunicorn ---------------------------------------

def seed_http_users(app, count, devices_file):
    """Users with location consent and one device each; writes "token device" lines."""
    from consent import engine
    from consent.ledger import ChangeContext
    from extensions import db
    from models import User
    from models.base import utcnow
    from reports import register_device
    from security import hash_password, open_session

    lines = []
    with app.test_request_context(), db.connection_context():
        digest = hash_password("bench password 1")
        for n in range(count):
            user = User.create(email=f"http{n}@bench.example", email_normalized=f"http{n}@bench.example",
                               password_hash=digest, created_at=utcnow())
            engine.set_consents(user, {"location": True, "device_info": True}, ChangeContext(source="app"))
            device, _, _ = register_device(user, {"installation_id": f"http-install-{n:06d}", "platform": "android",
                                                  "app_version": "4.2.0"})
            lines.append(f"{open_session(user)['access_token']} {device.id}")
    with open(devices_file, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def checkpoint():
    """Flush PostgreSQL's dirty buffers before a measured phase, so that a
    checkpoint left over from resetting and seeding the database (minutes of
    writes in the background) does not land in the middle of it."""
    pg("CHECKPOINT")


def stored_locations():
    """Rows in ``location``: every report of the load script is new, so each
    request must have stored its points (a retry would measure the slower
    duplicate path)."""
    return pg("SELECT count(*) FROM location")[0][0]


def check_all_stored(result, per_request):
    expected = result["requests"] * per_request
    if result["stored"] < expected:
        log(f"only {result['stored']} of {expected} points were stored: the load repeated reports")


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


def http_benchmarks(size, instance, results):
    app = bench_app(instance)
    devices_file = os.path.join(instance, "devices.txt")
    seed_http_users(app, size["users"], devices_file)
    port = free_port()
    gunicorn, layout = start_gunicorn(instance, port)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        args = (port, size["wrk_seconds"], size["connections"], devices_file)
        run_wrk(port, "ceiling", 1, size["connections"], devices_file)  # warm-up
        checkpoint()
        ceiling = run_wrk(*args[:1], "ceiling", *args[1:])
        checkpoint()
        ingest = run_wrk(*args[:1], "ingest", *args[1:])
        ingest["stored"] = stored_locations()
        checkpoint()
        batch = run_wrk(*args[:1], "batch", *args[1:])  # as many connections as the single reports
        batch["stored"] = stored_locations() - ingest["stored"]
        checkpoint()
        consent = run_wrk(*args[:1], "consent", *args[1:])
    finally:
        stop(gunicorn)
    check_all_stored(ingest, 1)
    check_all_stored(batch, 500)
    results["gunicorn"] = layout
    results["ingest"] = {"ceiling": ceiling, "ingest": ingest, "ratio": round(ingest["rps"] / ceiling["rps"], 3),
                         "target_ratio": TARGETS["ingest_ratio"]}
    locations_per_second = batch["rps"] * 500
    results["batch_ingest"] = {"batch": batch, "locations_per_second": round(locations_per_second),
                               "multiple_of_single": round(locations_per_second / ingest["rps"], 1),
                               "target_multiple": TARGETS["batch_multiple"]}
    results["consent_put"] = {"put": consent, "ceiling": ceiling,
                              "ratio": round(consent["rps"] / ceiling["rps"], 3)}


def consent_check_benchmark(size, instance, results):
    """Effective-consent checks per second (one indexed query each) against
    the bare indexed SELECT they are built on."""
    from consent import engine
    from extensions import db
    from models import User

    app = bench_app(instance)
    with app.test_request_context(), db.connection_context():
        users = list(User.select().limit(200))
        n = size["checks"]
        started = time.perf_counter()
        for i in range(n):
            user = users[i % len(users)]
            engine._forget(user)
            engine.check(user, "location")
        checks = n / (time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(n):
            db.execute_sql("SELECT granted FROM consent WHERE user_id = %s AND permission = %s",
                           (users[i % len(users)].id, "location")).fetchall()
        bare = n / (time.perf_counter() - started)
    results["consent_checks"] = {"checks_per_second": round(checks), "bare_select_per_second": round(bare),
                                 "ratio": round(checks / bare, 3)}


# -- 3: push fan-out --------------------------------------------------------------------

def start_fcm_server(instance):
    process = subprocess.Popen([sys.executable, "-m", "bench.fcm_server", os.path.join(instance, "sa.json")],
                               cwd=ROOT, env=base_env(instance), stdout=subprocess.PIPE, text=True,
                               start_new_session=True)
    info = json.loads(process.stdout.readline())
    return process, info


def push_env(instance, fcm, size):
    return base_env(instance, PUSH_PROVIDER="fcm", FCM_CREDENTIALS_FILE=fcm["credentials"],
                    FCM_PROJECT_ID=fcm["project_id"], FCM_ENDPOINT=fcm["base_url"], PUSH_SLICE_LEASE_SECONDS=300,
                    WORKER_THREADS=size["consumer_threads"])


def _ceiling_process(fcm, tokens, threads):
    """One process of the ceiling: (start, end, delivered) in wall-clock time."""
    from push.providers import FcmProvider, Message

    provider = FcmProvider(fcm["credentials"], fcm["project_id"], fcm["base_url"])
    batches = [[Message(token=t, title="Sale", body="20% off", data={"campaign_id": "bench"})
                for t in tokens[i:i + 500]] for i in range(0, len(tokens), 500)]
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.time()
    with ThreadPoolExecutor(threads) as pool:
        sent = sum(sum(1 for r in results if r.status == "delivered") for results in pool.map(provider.send, batches))
    ended = time.time()
    provider.close()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return started, ended, sent, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def send_each_ceiling(fcm, tokens, processes, threads):
    """Bare messaging.send_each to the same server, no database, laid out as
    the fan-out is: as many processes as consumers, as many batches in
    flight in each as a consumer has worker threads."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    shares = [tokens[n::processes] for n in range(processes)]
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        runs = list(pool.map(_ceiling_process, [fcm] * processes, shares, [threads] * processes))
    elapsed = max(run[1] for run in runs) - min(run[0] for run in runs)
    sent = sum(run[2] for run in runs)
    cpu = sum(run[3] for run in runs)
    return {"messages": sent, "seconds": round(elapsed, 2), "messages_per_second": round(sent / elapsed),
            "processes": processes, "threads_per_process": threads,
            "cpu_seconds_per_1000": round(cpu / max(sent, 1) * 1000, 3)}


def start_consumers(env, count, threads):
    return [subprocess.Popen([sys.executable, "-m", "huey.bin.huey_consumer", "consumer.huey", "-w", str(threads),
                              "-k", "thread", "-n"], cwd=ROOT, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)]


def run_campaign(app, audience, consumers_env, size, timeout):
    """Create and send a marketing campaign; wait for it with consumer
    processes running. Returns (seconds, counters, cpu seconds, peak MB per worker)."""
    from extensions import db
    from models.push import Campaign
    from push import campaigns

    with app.test_request_context(), db.connection_context():
        campaign = campaigns.create({"name": "bench", "kind": "marketing", "title": "Sale", "body": "20% off",
                                     "audience": audience}, None)
    consumers = start_consumers(consumers_env, size["consumers"], size["consumer_threads"])
    peaks = [0.0] * len(consumers)
    try:
        time.sleep(1.5)  # consumers up
        with app.test_request_context(), db.connection_context():
            started = time.perf_counter()
            campaigns.send(campaign)
        deadline = time.monotonic() + timeout
        while True:
            with app.test_request_context(), db.connection_context():
                status = Campaign.select(Campaign.status).where(Campaign.id == campaign.id).scalar()
            peaks = [max(p, peak_rss_mb(c.pid)) for p, c in zip(peaks, consumers)]
            if status in ("completed", "paused", "cancelled"):
                break
            if time.monotonic() > deadline:
                with app.test_request_context(), db.connection_context():
                    state = campaigns.status(Campaign.get_by_id(campaign.id))
                raise RuntimeError(f"campaign still {status} after {timeout} s: {state}")
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(c.pid) for c in consumers)
    finally:
        for consumer in consumers:
            stop(consumer)
    with app.test_request_context(), db.connection_context():
        counters = campaigns.status(Campaign.get_by_id(campaign.id))
    return elapsed, counters, cpu, peaks, status


def all_tokens():
    return [token for (token,) in pg("SELECT token FROM push_token ORDER BY device_id")]


def push_benchmark(size, instance, results):
    from bench.seed import population

    reset_database(instance)
    population(PG_URL, size["push_devices"], all_consent={"marketing_push"})
    app = bench_app(instance)
    fcm_process, fcm = start_fcm_server(instance)
    checkpoint()

    def others():  # CPU seconds so far of the FCM stand-in and PostgreSQL, which share the cores
        return {"fcm_server": cpu_seconds(fcm_process.pid), "postgres": cpu_by_program()["postgres"]}

    def per_1000(before, after, messages):
        return {name: round((after[name] - before[name]) / max(messages, 1) * 1000, 3) for name in before}

    try:
        before = others()
        ceiling = send_each_ceiling(fcm, all_tokens(), size["consumers"], size["consumer_threads"])
        ceiling["other_cpu_seconds_per_1000"] = per_1000(before, others(), ceiling["messages"])
        checkpoint()
        before = others()
        elapsed, counters, cpu, peaks, status = run_campaign(app, {}, push_env(instance, fcm, size), size,
                                                             size["campaign_timeout"])
        other_cpu = per_1000(before, others(), counters["sent"])
    finally:
        stop(fcm_process)
    rate = counters["sent"] / elapsed
    results["push_fanout"] = {
        "devices": size["push_devices"], "status": status, "counters": counters, "seconds": round(elapsed, 2),
        "messages_per_second": round(rate), "ceiling": ceiling,
        "ratio": round(rate / ceiling["messages_per_second"], 3), "target_ratio": TARGETS["push_ratio"],
        "cpu_seconds_per_1000": round(cpu / max(counters["sent"], 1) * 1000, 3),
        "other_cpu_seconds_per_1000": other_cpu,
        "consumers": size["consumers"], "threads_per_consumer": size["consumer_threads"],
    }


AUDIENCE = {"models": ["Pixel 9", "iPhone 16", "Mate 70"],
            "area": {"latitude": 31.2304, "longitude": 121.4737, "radius_km": 60}}


def audience_benchmark(size, instance, results):
    from bench.seed import population
    from extensions import db
    from models.push import Campaign
    from push import audience

    reset_database(instance)
    started = time.perf_counter()
    population(PG_URL, size["audience_users"])
    seeded = time.perf_counter() - started
    app = bench_app(instance)
    checkpoint()
    with app.test_request_context(), db.connection_context():
        campaign = Campaign(kind="marketing", audience=AUDIENCE)
        preview_times, preview = [], None
        for _ in range(3):
            started = time.perf_counter()
            preview = audience.preview(campaign)
            preview_times.append(time.perf_counter() - started)
        scan_times = []
        for _ in range(3):
            started = time.perf_counter()
            db.execute_sql("SELECT count(*) FROM device JOIN push_token ON push_token.device_id = device.id").fetchall()
            scan_times.append(time.perf_counter() - started)
    fcm_process, fcm = start_fcm_server(instance)
    try:
        elapsed, counters, cpu, peaks, status = run_campaign(app, AUDIENCE, push_env(instance, fcm, size), size,
                                                             size["campaign_timeout"])
    finally:
        stop(fcm_process)
    preview_seconds = statistics.median(preview_times)
    results["audience"] = {
        "users": size["audience_users"], "seed_seconds": round(seeded, 1), "audience": AUDIENCE,
        "preview": preview, "preview_seconds": round(preview_seconds, 3),
        "bare_scan_seconds": round(statistics.median(scan_times), 3),
        "ratio_to_bare_scan": round(preview_seconds / statistics.median(scan_times), 2),
        "target_preview_seconds": TARGETS["preview_seconds"],
        "fanout": {"status": status, "seconds": round(elapsed, 1), "counters": counters},
        "worker_peak_mb": [round(p, 1) for p in peaks], "target_worker_peak_mb": TARGETS["worker_peak_mb"],
    }


# -- report -----------------------------------------------------------------------------

def machine():
    memory = next((int(line.split()[1]) // 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    return {"cores": os.cpu_count(), "memory_mb": memory, "python": platform.python_version(),
            "postgres": pg("SHOW server_version")[0][0], "kernel": platform.release()}


def table(results):
    rows = []
    ingest = results.get("ingest")
    if ingest:
        rows.append(("ingest (POST /locations)", f"{ingest['ingest']['rps']:.0f} req/s, p50 {ingest['ingest']['p50_ms']} ms,"
                     f" p99 {ingest['ingest']['p99_ms']} ms", f"{ingest['ceiling']['rps']:.0f} req/s (JWT only)",
                     f"{ingest['ratio']:.2f}", f">= {TARGETS['ingest_ratio']}", ingest["ratio"] >= TARGETS["ingest_ratio"]))
        batch = results["batch_ingest"]
        rows.append(("batch ingest (500/request)", f"{batch['locations_per_second']} locations/s",
                     f"{ingest['ingest']['rps']:.0f} single reports/s", f"{batch['multiple_of_single']}x",
                     f">= {TARGETS['batch_multiple']}x", batch["multiple_of_single"] >= TARGETS["batch_multiple"]))
        put = results["consent_put"]
        rows.append(("PUT /me/consents", f"{put['put']['rps']:.0f} req/s, p99 {put['put']['p99_ms']} ms",
                     f"{put['ceiling']['rps']:.0f} req/s (JWT only)", f"{put['ratio']:.2f}", "-", True))
    checks = results.get("consent_checks")
    if checks:
        rows.append(("effective-consent checks", f"{checks['checks_per_second']}/s",
                     f"{checks['bare_select_per_second']}/s (bare SELECT)", f"{checks['ratio']:.2f}", "-", True))
    push = results.get("push_fanout")
    if push:
        rows.append(("push fan-out", f"{push['messages_per_second']} msg/s, {push['cpu_seconds_per_1000']} CPU s/1000",
                     f"{push['ceiling']['messages_per_second']} msg/s (bare send_each)", f"{push['ratio']:.2f}",
                     f">= {TARGETS['push_ratio']}", push["ratio"] >= TARGETS["push_ratio"]))
    aud = results.get("audience")
    if aud:
        rows.append(("audience preview", f"{aud['preview_seconds']} s over {aud['users']} users",
                     f"{aud['bare_scan_seconds']} s (bare scan)", f"{aud['ratio_to_bare_scan']}x",
                     f"<= {TARGETS['preview_seconds']} s", aud["preview_seconds"] <= TARGETS["preview_seconds"]))
        peak = max(aud["worker_peak_mb"] or [0])
        rows.append(("fan-out worker memory", f"{peak} MB peak", "-", "-", f"< {TARGETS['worker_peak_mb']} MB",
                     peak < TARGETS["worker_peak_mb"]))
    header = ("benchmark", "figure", "ceiling", "ratio", "target", "met")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(5)]
    lines = [" | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " | met"]
    for row in rows:
        lines.append(" | ".join(str(c).ljust(w) for c, w in zip(row[:5], widths)) + (" | yes" if row[5] else " | NO"))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, under a minute")
    parser.add_argument("--only", nargs="*", default=["http", "checks", "push", "audience"])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (Debian's package)")
    size = SIZES["smoke" if args.smoke else "full"]
    ensure_database()
    output = os.path.join(ROOT, "bench", "results.json")
    everything = sorted(args.only) == sorted(["http", "checks", "push", "audience"])
    results = {} if everything or not os.path.exists(output) else json.load(open(output))
    results.update({"mode": "smoke" if args.smoke else "full", "machine": machine(),
               "command": "make bench-smoke" if args.smoke else "make bench",
                    "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    instance = tempfile.mkdtemp(prefix="bench-")
    try:
        if "http" in args.only or "checks" in args.only:
            reset_database(instance)
        if "http" in args.only:
            log("ingest, batch ingest and consent writes under gunicorn")
            http_benchmarks(size, instance, results)
        if "checks" in args.only:
            log("effective-consent checks")
            consent_check_benchmark(size, instance, results)
        if "push" in args.only:
            log(f"push fan-out over {size['push_devices']} devices")
            push_benchmark(size, instance, results)
        if "audience" in args.only:
            log(f"audience over {size['audience_users']} users")
            audience_benchmark(size, instance, results)
    finally:
        shutil.rmtree(instance, ignore_errors=True)
    with open(output, "w") as handle:
        json.dump(results, handle, indent=2, default=str)
    print(table(results))
    print(f"results: {output}")


if __name__ == "__main__":
    main()
