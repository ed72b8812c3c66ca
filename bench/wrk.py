"""The wrk driver: one run of bench/load.lua in a mode, wrk's figures
parsed, and what each request cost in CPU."""
import os
import re
import resource
import subprocess
import time

from bench.harness import ROOT, cpu_by_program, log

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def run_wrk(port, mode, seconds, connections, devices_file, threads=2, batch=500):
    """wrk's figures, plus the CPU milliseconds each request cost the API,
    PostgreSQL, Redis and wrk itself (what limits a figure on shared cores)."""
    env = {**os.environ, "BENCH_MODE": mode, "BENCH_DEVICES": devices_file, "BENCH_THREADS": str(threads),
           "BENCH_BASE_EPOCH": str(int(time.time()) - 60), "BENCH_BATCH": str(batch)}
    before, children = cpu_by_program(), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
                          "-s", os.path.join(ROOT, "bench", "load.lua"), f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True, env=env, check=True)
    result = parse(out.stdout)
    after, children_after = cpu_by_program(), resource.getrusage(resource.RUSAGE_CHILDREN)
    spent = {name: after[name] - before[name] for name in after}
    spent["wrk"] = (children_after.ru_utime + children_after.ru_stime) - (children.ru_utime + children.ru_stime)
    result["cpu_ms_per_request"] = {name: round(value / max(result["requests"], 1) * 1000, 3)
                                    for name, value in spent.items()}
    if result["errors"]:
        log(f"wrk {mode}: {result['errors']} error responses\n{out.stderr[:600]}")
    return result


def parse(text):
    """Requests per second, p50 and p99 in ms, error responses and requests of wrk's report."""
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}
    for pct in ("50", "99"):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", text).groups()
        result[f"p{pct}_ms"] = round(float(value) * UNITS[unit], 2)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    result["errors"] = int(errors.group(1)) if errors else 0
    result["requests"] = int(re.search(r"(\d+) requests in", text).group(1))
    return result
