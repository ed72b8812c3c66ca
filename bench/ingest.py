"""Benchmarks 1, 2 and 5b under gunicorn: single location reports, batches
of 500 and consent writes, each against a route of the same app that only
decodes the JWT (the ceiling)."""
import os

from bench import appside
from bench.harness import (TARGETS, bench_app, checkpoint, free_port, log, pg, start_gunicorn, stop,
                           wait_http)
from bench.wrk import run_wrk

BATCH = 500  # items per /locations/batch request (bench/load.lua's default)


def seed_http_users(app, count, devices_file):
    """Users with location consent and one device each; writes "token device" lines."""
    lines = []
    with appside.app_context(app):
        digest = appside.hash_password("bench password 1")
        for n in range(count):
            token, device_id = appside.user_with_device(
                f"http{n}@bench.example", digest, {"location": True, "device_info": True},
                {"installation_id": f"http-install-{n:06d}", "platform": "android", "app_version": "4.2.0"})
            lines.append(f"{token} {device_id}")
    with open(devices_file, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def stored_locations():
    """Rows in ``location``: every report of the load script is new, so each
    request must have stored its points (a retry would measure the slower
    duplicate path)."""
    return pg("SELECT count(*) FROM location")[0][0]


def check_all_stored(result, per_request):
    expected = result["requests"] * per_request
    if result["stored"] < expected:
        log(f"only {result['stored']} of {expected} points were stored: the load repeated reports")


def run(size, instance, results):
    """Fills ``results`` "gunicorn", "ingest", "batch_ingest" and "consent_put"."""
    app = bench_app(instance)
    devices_file = os.path.join(instance, "devices.txt")
    seed_http_users(app, size["users"], devices_file)
    port = free_port()
    gunicorn, layout = start_gunicorn(instance, port)

    def measure(mode):
        checkpoint()
        return run_wrk(port, mode, size["wrk_seconds"], size["connections"], devices_file, batch=BATCH)

    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        run_wrk(port, "ceiling", 1, size["connections"], devices_file)  # warm-up
        ceiling = measure("ceiling")
        ingest = measure("ingest")
        ingest["stored"] = stored_locations()
        batch = measure("batch")  # as many connections as the single reports
        batch["stored"] = stored_locations() - ingest["stored"]
        consent = measure("consent")
    finally:
        stop(gunicorn)
    check_all_stored(ingest, 1)
    check_all_stored(batch, BATCH)
    results["gunicorn"] = layout
    results["ingest"] = {"ceiling": ceiling, "ingest": ingest, "ratio": round(ingest["rps"] / ceiling["rps"], 3),
                         "target_ratio": TARGETS["ingest_ratio"]}
    locations_per_second = batch["rps"] * BATCH
    results["batch_ingest"] = {"batch": batch, "locations_per_second": round(locations_per_second),
                               "multiple_of_single": round(locations_per_second / ingest["rps"], 1),
                               "target_multiple": TARGETS["batch_multiple"]}
    results["consent_put"] = {"put": consent, "ceiling": ceiling,
                              "ratio": round(consent["rps"] / ceiling["rps"], 3)}
