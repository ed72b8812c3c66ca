"""Benchmarks against PostgreSQL and Redis on this machine. Each figure is a
ratio against a ceiling measured in the same run. ``python -m bench.run``
(full) or ``--smoke`` (tiny sizes, under a minute, for CI). Prints a table
and writes bench/results.json."""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # also as `python bench/run.py`

from bench import audience_preview, consent_checks, ingest, push_fanout, report  # noqa: E402
from bench.harness import SIZES, ensure_database, log, reset_database  # noqa: E402

BENCHMARKS = ["http", "checks", "push", "audience"]  # the names --only takes, in the order they run


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, under a minute")
    parser.add_argument("--only", nargs="*", default=BENCHMARKS)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (Debian's package)")
    size = SIZES["smoke" if args.smoke else "full"]
    ensure_database()
    output = os.path.join(ROOT, "bench", "results.json")
    everything = sorted(args.only) == sorted(BENCHMARKS)
    results = {} if everything or not os.path.exists(output) else json.load(open(output))
    results.update({"mode": "smoke" if args.smoke else "full", "machine": report.machine(),
                    "command": "make bench-smoke" if args.smoke else "make bench",
                    "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    instance = tempfile.mkdtemp(prefix="bench-")
    try:
        if "http" in args.only or "checks" in args.only:
            reset_database(instance)
        if "http" in args.only:
            log("ingest, batch ingest and consent writes under gunicorn")
            ingest.run(size, instance, results)
        if "checks" in args.only:
            log("effective-consent checks")
            consent_checks.run(size, instance, results)
        if "push" in args.only:
            log(f"push fan-out over {size['push_devices']} devices")
            push_fanout.run(size, instance, results)
        if "audience" in args.only:
            log(f"audience over {size['audience_users']} users")
            audience_preview.run(size, instance, results)
    finally:
        shutil.rmtree(instance, ignore_errors=True)
    report.write(results, output)
    print(report.table(results))
    print(f"results: {output}")


if __name__ == "__main__":
    main()
