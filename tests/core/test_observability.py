"""``/metrics`` (issue 16, observability): counters move with the requests,
locations, consent refusals and a campaign that really run; no label names
a user; the scrape is guarded by a token or the loopback address; several
processes' counts add up. The request log line is JSON without personal
data."""
import io
import json
import logging
import os
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core import logs, redaction
from tests.conftest import ROOT
from tests.consent_helpers import new_user, put_consents
from tests.device_helpers import add_device, point
from tests.push_helpers import create_campaign, member, send


def scrape(client, **kwargs):
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before, after, name, **labels):
    return value(after, name, **labels) - value(before, name, **labels)


def test_counters_follow_requests_locations_refusals_and_a_campaign(push_app, admin, fcm_server):
    client = push_app.test_client()
    people = [member(client, {"marketing_push": True}) for _ in range(3)]
    fcm_server.script[people[2]["token"]] = ["unregistered"]
    walker = new_user(client)
    put_consents(client, walker["headers"], location=True)
    phone = add_device(client, walker["headers"])
    stranger = new_user(client)
    stranger_phone = add_device(client, stranger["headers"])
    before = scrape(client)

    for _ in range(4):
        assert client.get("/v1/permissions").status_code == 200
    report = point()
    assert client.post(f"/v1/devices/{phone['id']}/locations", json=report,
                       headers=walker["headers"]).status_code == 201
    assert client.post(f"/v1/devices/{phone['id']}/locations", json=report,
                       headers=walker["headers"]).status_code == 200
    refused = client.post(f"/v1/devices/{stranger_phone['id']}/locations", json=point(),
                          headers=stranger["headers"])
    assert refused.status_code == 403
    during = scrape(client)
    campaign = create_campaign(client, admin)
    send(client, admin, campaign)
    after = scrape(client)

    assert moved(before, during, "http_requests_total", method="GET", route="/v1/permissions", status="200") == 4
    assert moved(before, during, "http_request_duration_seconds_count", method="GET", route="/v1/permissions") == 4
    assert moved(before, during, "http_requests_total", method="POST",
                 route="/v1/devices/<uuid:device_id>/locations", status="403") == 1
    assert moved(before, during, "locations_total", outcome="stored") == 1
    assert moved(before, during, "locations_total", outcome="duplicate") == 1
    assert moved(before, during, "locations_total", outcome="refused") == 1
    assert moved(before, during, "consent_refusals_total", permission="location", reason="not_asked") == 1
    assert moved(before, during, "consent_checks_total", permission="location") >= 2
    assert moved(during, after, "push_messages_total", provider="fcm", outcome="delivered") == 2
    assert moved(during, after, "push_messages_total", provider="fcm", outcome="token_invalid") == 1
    assert moved(during, after, "push_fanout_slices_total", event="planned") == 1
    assert moved(during, after, "push_fanout_slices_total", event="done") == 1
    assert moved(during, after, "worker_tasks_total", task="send_slice", outcome="complete") == 1
    assert moved(during, after, "push_campaigns", status="completed") == 1
    assert moved(before, after, "http_requests_total", method="GET", route="/metrics", status="200") == 2

    personal = [str(value) for person in (*people, {"session": walker}, {"session": stranger})
                for value in (person["session"]["user"]["id"], person["session"]["user"]["email"])]
    personal += [person["token"] for person in people] + [phone["id"], stranger_phone["id"]]
    labels = {label for _, pairs in after for _, label in pairs}
    assert [label for label in labels if any(item.lower() in label.lower() for item in personal)] == []
    assert not any("@" in label for label in labels)


def test_unmatched_paths_are_counted_without_the_path(client):
    before = scrape(client)
    assert client.get("/v1/no-such-route/someone@example.org").status_code == 404
    after = scrape(client)
    assert moved(before, after, "http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert not any("someone" in label for _, pairs in after for _, label in pairs)


def test_metrics_are_for_loopback_clients_unless_opened(make_app):
    remote = {"REMOTE_ADDR": "203.0.113.7"}
    closed = make_app().test_client()
    response = closed.get("/metrics", environ_base=remote)
    assert response.status_code == 403 and response.json["error"]["code"] == "forbidden"
    assert closed.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    opened = make_app(METRICS_ALLOW_REMOTE=True).test_client()
    assert opened.get("/metrics", environ_base=remote).status_code == 200


def test_behind_a_trusted_proxy_metrics_see_the_forwarded_client(make_app):
    """A reverse proxy on the same machine makes every request look local;
    with PROXY_FIX_HOPS=1 the address it forwards is the one checked."""
    via_proxy = {"environ_base": {"REMOTE_ADDR": "127.0.0.1"}, "headers": {"X-Forwarded-For": "203.0.113.7"}}
    assert make_app().test_client().get("/metrics", **via_proxy).status_code == 200  # the proxy looks local
    trusting = make_app(PROXY_FIX_HOPS=1).test_client()
    response = trusting.get("/metrics", **via_proxy)
    assert response.status_code == 403 and response.json["error"]["code"] == "forbidden"
    local = {"environ_base": {"REMOTE_ADDR": "127.0.0.1"}, "headers": {"X-Forwarded-For": "127.0.0.1"}}
    assert trusting.get("/metrics", **local).status_code == 200


def test_metrics_token_is_required_from_everywhere_when_set(make_app):
    token = "metrics-" + "k" * 32
    client = make_app(METRICS_TOKEN=token).test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.json["error"]["code"] == "authorization_required"
    scrape(client, headers={"Authorization": f"Bearer {token}"}, environ_base={"REMOTE_ADDR": "203.0.113.7"})


COUNT_IN_A_PROCESS = """
import sys
from core import metrics
if sys.argv[1] == "switch":  # imported before the directory was chosen, as python app.py's master is
    metrics.use_directory(sys.argv[2])
metrics.PUSH_MESSAGES.labels("fcm", "delivered").inc(int(sys.argv[3]))
metrics.HTTP_REQUESTS.labels("GET", "/healthz", "200").inc(int(sys.argv[3]))
"""


@pytest.mark.slow
def test_counts_of_several_processes_add_up(client, tmp_path, monkeypatch):
    directory = str(tmp_path / "prometheus")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PROMETHEUS_"))}
    subprocess.run([sys.executable, "-c", COUNT_IN_A_PROCESS, "switch", directory, "2"], cwd=ROOT, env=env,
                   check=True, timeout=60)
    subprocess.run([sys.executable, "-c", COUNT_IN_A_PROCESS, "environment", directory, "3"], cwd=ROOT,
                   env={**env, "PROMETHEUS_MULTIPROC_DIR": directory}, check=True, timeout=60)
    assert len(os.listdir(directory)) == 2  # one file per process and metric type

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", directory)
    samples = scrape(client)
    assert value(samples, "push_messages_total", provider="fcm", outcome="delivered") == 5
    assert value(samples, "http_requests_total", method="GET", route="/healthz", status="200") == 5
    assert "worker_queue_depth" in {name for name, _ in samples}  # the live gauges come from the scraper


def json_lines(stream):
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.fixture
def json_log():
    """A handler on the root logger given the app's JSON format the way
    ``python app.py`` gives it to every handler (``logs.apply_format``)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    formats = {other: other.formatter for other in redaction.all_handlers()}  # pytest's and the run log's
    root.addHandler(handler)
    logs.apply_format("json")
    try:
        yield handler, stream
    finally:
        root.removeHandler(handler)
        for other, formatter in formats.items():
            other.setFormatter(formatter)


def test_request_log_line_is_json_with_a_pseudonymous_user(app, client, json_log):
    handler, stream = json_log
    assert redaction.REDACT in handler.filters
    session = new_user(client, email="Json.Line@Example.org", phone="+8613912345678")
    put_consents(client, session["headers"], location=True)
    phone = add_device(client, session["headers"])
    stream.truncate(0)
    stream.seek(0)
    response = client.post(f"/v1/devices/{phone['id']}/locations", json=point(latitude=31.987654),
                           headers={**session["headers"], "X-Request-ID": "trace-json-0001"})
    assert response.status_code == 201

    [line] = [entry for entry in json_lines(stream) if entry["logger"] == "app.request"]
    assert set(line) >= {"time", "level", "logger", "message", "request_id", "method", "route", "status",
                         "latency_ms", "user_ref"}
    assert line["request_id"] == "trace-json-0001" == response.headers["X-Request-ID"]
    assert (line["method"], line["route"], line["status"]) == ("POST", "/v1/devices/<uuid:device_id>/locations", 201)
    assert isinstance(line["latency_ms"], float) and line["latency_ms"] >= 0
    user_id = session["user"]["id"]
    assert line["user_ref"] == logs.user_reference(user_id, app.config["SECRET_KEY"])
    assert len(line["user_ref"]) == 16 and line["user_ref"] not in user_id.replace("-", "")
    written = stream.getvalue().lower()
    for personal in (user_id, session["user"]["email"].lower(), "8613912345678", phone["id"], phone["installation_id"],
                     "31.987654", session["access_token"].lower()):
        assert personal not in written


def test_anonymous_requests_and_tasks_log_json_lines(client, json_log):
    _handler, stream = json_log
    assert client.get("/v1/permissions").status_code == 200
    from core.worker import write_heartbeat

    write_heartbeat()  # immediate mode: the task runs here, through the queue

    entries = json_lines(stream)
    [anonymous] = [entry for entry in entries if entry.get("route") == "/v1/permissions"]
    assert anonymous["user_ref"] is None and anonymous["status"] == 200
    tasks = [entry for entry in entries if entry["logger"] == "app.task"]
    assert tasks and all(set(entry) >= {"task", "task_id", "outcome", "duration_ms"} for entry in tasks)
    assert [(entry["task"], entry["outcome"]) for entry in tasks] == [("write_heartbeat", "complete")]


def test_user_reference_is_keyed():
    assert logs.user_reference("42", "a" * 48) == logs.user_reference("42", "a" * 48)
    assert logs.user_reference("42", "a" * 48) != logs.user_reference("42", "b" * 48)
    assert logs.user_reference("42", "a" * 48) != logs.user_reference("43", "a" * 48)
    assert logs.user_reference(None, "a" * 48) is None


def test_fields_of_json_lines_are_redacted_too(app, json_log):
    _handler, stream = json_log
    logging.getLogger("app.test").warning("lookup done", extra={"note": "for someone@example.org at 31.123456"})
    [line] = [entry for entry in json_lines(stream) if entry["logger"] == "app.test"]
    assert line["note"] == "for [email] at [coordinate]"
