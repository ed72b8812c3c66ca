"""``python app.py`` as ``make run`` starts it (issue 16): gunicorn's
workers and the task consumer count into one multiprocess directory, so a
scrape served by any worker shows the consumer's tasks too; gunicorn's
access log and the app's request lines are JSON; ``/readyz`` turns ready
once the consumer has written its heartbeat."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, free_port, process_log

pytestmark = pytest.mark.slow


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return None, ""


def wait_for(url, status, what, logs, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = get(url)
        if answer[0] == status:
            return answer
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; server log:\n{logs.read_text()[-4000:]}")


def json_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_make_run_counts_every_process_and_logs_json(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TEST_", "PROMETHEUS_", "DATABASE_URL", "REDIS_URL", "LOG_FORMAT"))}
    env.update(INSTANCE_PATH=str(tmp_path / "instance"), PORT=str(port), WEB_CONCURRENCY="2")
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=process_log(out),
                              stderr=process_log(err), start_new_session=True)
    try:
        wait_for(f"{base}/healthz", 200, "the server", err)
        wait_for(f"{base}/readyz", 200, "the consumer's heartbeat", err)
        for _ in range(6):
            assert get(f"{base}/v1/permissions")[0] == 200
        status, body = get(f"{base}/metrics")
        assert status == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)

    samples = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
               for family in text_string_to_metric_families(body) for sample in family.samples}
    assert samples[("http_requests_total", (("method", "GET"), ("route", "/v1/permissions"), ("status", "200")))] == 6
    tasks = {labels: count for (name, labels), count in samples.items() if name == "worker_tasks_total"}
    assert tasks.get((("outcome", "complete"), ("task", "write_heartbeat")), 0) >= 1  # counted by the consumer
    assert os.listdir(tmp_path / "instance" / "prometheus")

    access = [line for line in json_lines(out) if line["logger"] == "gunicorn.access"]
    served = [line for line in access if line["route"] == "/v1/permissions"]
    assert len(served) == 6
    assert all(line["status"] == 200 and len(line["request_id"]) == 32 and line["latency_ms"] >= 0
               for line in served)
    assert not any("path" in line or "remote" in line for line in access)
    requests = [line for line in json_lines(err) if line["logger"] == "app.request"]
    assert {line["request_id"] for line in served} <= {line["request_id"] for line in requests}
