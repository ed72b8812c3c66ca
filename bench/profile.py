"""Where the ingest path spends its CPU: py-spy samples the gunicorn
workers' threads that hold the GIL (so waiting on PostgreSQL, Redis or the
GIL itself is left out) while wrk drives POST /locations, and the busiest
frames are printed (``python -m bench.profile``; used for BENCHMARKS.md)."""
import os
import subprocess
import sys
import tempfile
from collections import Counter

from bench import harness
from bench.ingest import seed_http_users
from bench.wrk import run_wrk

SPY = os.path.join(os.path.dirname(sys.executable), "py-spy")


def summarize(raw_path, top=12):
    own, inclusive, total = Counter(), Counter(), 0
    for line in open(raw_path):
        stack, _, count = line.rstrip().rpartition(" ")
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  for f in stack.split(";") if " (" in f]
        if not frames or frames[-1].startswith(("select ", "wait ", "_wait_for_tstate_lock")):
            continue
        count = int(count)
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples of worker threads holding the GIL", "", "self time:"]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "inclusive (project and library entry points):"]
    wanted = ("collection/", "consent/", "auth/", "blueprints/base.py", "core/http.py", "marshmallow", "schema.py",
              "flask_limiter", "_extension.py", "client.py", "view_decorators.py", "response.py", "arguments.py")
    picks = [(f, n) for f, n in inclusive.most_common(400) if any(w in f for w in wanted)]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in picks[:top]]
    return "\n".join(lines)


def main(seconds=10):
    instance = tempfile.mkdtemp(prefix="bench-profile-")
    harness.ensure_database()
    harness.reset_database(instance)
    app = harness.bench_app(instance)
    devices = os.path.join(instance, "devices.txt")
    seed_http_users(app, 50, devices)
    port = harness.free_port()
    server, _ = harness.start_gunicorn(instance, port)
    raw = os.path.join(instance, "ingest.txt")
    try:
        harness.wait_http(f"http://127.0.0.1:{port}/healthz")
        run_wrk(port, "ingest", 2, 32, devices)  # every worker booted and warm before sampling starts
        spy = subprocess.Popen([SPY, "record", "--pid", str(server.pid), "--subprocesses", "-d", str(seconds),
                                "--gil", "-r", "200", "-f", "raw", "-o", raw], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        result = run_wrk(port, "ingest", seconds, 32, devices)
        spy.wait()
    finally:
        harness.stop(server)
    report = f"ingest under py-spy: {result}\n\n" + summarize(raw)
    out = os.path.join(harness.ROOT, "bench", "profile-ingest.txt")
    with open(out, "w") as handle:
        handle.write(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
