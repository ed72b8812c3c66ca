"""Benchmark 3: a marketing campaign fanned out by huey consumers through
the real firebase-admin SDK to the local FCM stand-in, against bare
``send_each`` calls to the same server laid out the same way (the ceiling).
``run_campaign`` is shared with the audience benchmark."""
import resource
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context

from bench import appside
from bench.harness import (PG_URL, ROOT, TARGETS, base_env, bench_app, checkpoint, cpu_by_program, cpu_seconds,
                           peak_rss_mb, pg, reset_database, start_fcm_server, stop)
from bench.seed import population

FINISHED = ("completed", "paused", "cancelled")


def push_env(instance, fcm, size):
    """The consumers' environment: the FCM provider pointed at the stand-in."""
    return base_env(instance, PUSH_PROVIDER="fcm", FCM_CREDENTIALS_FILE=fcm["credentials"],
                    FCM_PROJECT_ID=fcm["project_id"], FCM_ENDPOINT=fcm["base_url"], PUSH_SLICE_LEASE_SECONDS=300,
                    WORKER_THREADS=size["consumer_threads"])


def _ceiling_process(fcm, tokens, threads):
    """One process of the ceiling: (start, end, delivered, CPU seconds), times in wall-clock time."""
    provider = appside.fcm_provider(fcm["credentials"], fcm["project_id"], fcm["base_url"])
    batches = [[appside.push_message(t, "Sale", "20% off", {"campaign_id": "bench"}) for t in tokens[i:i + 500]]
               for i in range(0, len(tokens), 500)]
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
    return [subprocess.Popen([sys.executable, "-m", "huey.bin.huey_consumer", appside.HUEY_INSTANCE, "-w",
                              str(threads), "-k", "thread", "-n"], cwd=ROOT, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)]


def run_campaign(app, audience, consumers_env, size, timeout):
    """Create and send a marketing campaign; wait for it with consumer
    processes running. Returns (seconds, counters, CPU seconds of the
    consumers, peak MB per consumer, final status)."""
    with appside.app_context(app):
        campaign = appside.create_campaign({"name": "bench", "kind": "marketing", "title": "Sale",
                                            "body": "20% off", "audience": audience})
    consumers = start_consumers(consumers_env, size["consumers"], size["consumer_threads"])
    peaks = [0.0] * len(consumers)
    try:
        time.sleep(1.5)  # consumers up
        with appside.app_context(app):
            started = time.perf_counter()
            appside.send_campaign(campaign)
        deadline = time.monotonic() + timeout
        while True:
            with appside.app_context(app):
                status = appside.campaign_status(campaign.id)
            peaks = [max(p, peak_rss_mb(c.pid)) for p, c in zip(peaks, consumers)]
            if status in FINISHED:
                break
            if time.monotonic() > deadline:
                with appside.app_context(app):
                    state = appside.campaign_counters(campaign.id)
                raise RuntimeError(f"campaign still {status} after {timeout} s: {state}")
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(c.pid) for c in consumers)
    finally:
        for consumer in consumers:
            stop(consumer)
    with appside.app_context(app):
        counters = appside.campaign_counters(campaign.id)
    return elapsed, counters, cpu, peaks, status


def all_tokens():
    return [token for (token,) in pg("SELECT token FROM push_token ORDER BY device_id")]


def run(size, instance, results):
    """Fills ``results["push_fanout"]``, on a database of its own."""
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
