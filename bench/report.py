"""The report of a run: the machine it ran on, the table printed at the end,
and bench/results.json."""
import json
import os
import platform

import psutil

from bench.harness import TARGETS, pg


def machine():
    return {"cores": os.cpu_count(), "memory_mb": psutil.virtual_memory().total // (1024 * 1024),
            "python": platform.python_version(), "postgres": pg("SHOW server_version")[0][0],
            "kernel": platform.release()}


def write(results, path):
    with open(path, "w") as handle:
        json.dump(results, handle, indent=2, default=str)


def table(results):
    """One row per figure of ``results``: figure, ceiling, ratio, target, whether it is met."""
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
