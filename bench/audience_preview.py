"""Benchmark 4: the audience preview of a marketing campaign with a
``models`` and an ``area`` filter, against a bare scan of devices joined to
push tokens; then the fan-out to that audience and each worker's peak memory."""
import statistics
import time

from bench import appside
from bench.harness import PG_URL, TARGETS, bench_app, checkpoint, reset_database, start_fcm_server, stop
from bench.push_fanout import push_env, run_campaign
from bench.seed import population

AUDIENCE = {"models": ["Pixel 9", "iPhone 16", "Mate 70"],
            "area": {"latitude": 31.2304, "longitude": 121.4737, "radius_km": 60}}
ROUNDS = 3  # the median of three


def timed(function):
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def run(size, instance, results):
    """Fills ``results["audience"]``, on a database of its own."""
    reset_database(instance)
    seeded, _ = timed(lambda: population(PG_URL, size["audience_users"]))
    app = bench_app(instance)
    checkpoint()
    with appside.app_context(app):
        previews = [timed(lambda: appside.audience_preview(AUDIENCE)) for _ in range(ROUNDS)]
        scans = [timed(lambda: appside.execute(
            "SELECT count(*) FROM device JOIN push_token ON push_token.device_id = device.id"))
            for _ in range(ROUNDS)]
    preview = previews[-1][1]
    fcm_process, fcm = start_fcm_server(instance)
    try:
        elapsed, counters, cpu, peaks, status = run_campaign(app, AUDIENCE, push_env(instance, fcm, size), size,
                                                             size["campaign_timeout"])
    finally:
        stop(fcm_process)
    preview_seconds = statistics.median(seconds for seconds, _ in previews)
    scan_seconds = statistics.median(seconds for seconds, _ in scans)
    results["audience"] = {
        "users": size["audience_users"], "seed_seconds": round(seeded, 1), "audience": AUDIENCE,
        "preview": preview, "preview_seconds": round(preview_seconds, 3),
        "bare_scan_seconds": round(scan_seconds, 3),
        "ratio_to_bare_scan": round(preview_seconds / scan_seconds, 2),
        "target_preview_seconds": TARGETS["preview_seconds"],
        "fanout": {"status": status, "seconds": round(elapsed, 1), "counters": counters},
        "worker_peak_mb": [round(p, 1) for p in peaks], "target_worker_peak_mb": TARGETS["worker_peak_mb"],
    }
