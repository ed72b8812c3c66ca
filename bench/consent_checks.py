"""Benchmark 5a: effective-consent checks per second (one indexed query
each) against the bare indexed SELECT they are built on."""
import time

from bench import appside
from bench.harness import bench_app


def run(size, instance, results):
    """Fills ``results["consent_checks"]``; runs on the users the ingest benchmark seeded."""
    app = bench_app(instance)
    with appside.app_context(app):
        users = appside.some_users(200)
        n = size["checks"]
        started = time.perf_counter()
        for i in range(n):
            appside.check_uncached(users[i % len(users)], "location")
        checks = n / (time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(n):
            appside.execute("SELECT granted FROM consent WHERE user_id = %s AND permission = %s",
                            (users[i % len(users)].id, "location"))
        bare = n / (time.perf_counter() - started)
    results["consent_checks"] = {"checks_per_second": round(checks), "bare_select_per_second": round(bare),
                                 "ratio": round(checks / bare, 3)}
