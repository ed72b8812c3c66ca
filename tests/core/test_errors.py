"""Every error is the JSON envelope, never HTML (issue 2, acceptance 5)."""
import logging

import pytest

from models import User


def assert_envelope(response, status, code=None):
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert b"<html" not in response.data.lower()
    error = response.json["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["message"], str) and error["message"]
    if code:
        assert error["code"] == code
    return error


def test_unknown_route_is_404(client):
    assert_envelope(client.get("/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_405_with_allow(client):
    response = client.get("/v1/auth/login")
    error = assert_envelope(response, 405, "method_not_allowed")
    assert "POST" in error["details"]["allowed"]
    assert "POST" in response.headers["Allow"]


def test_malformed_json_is_400(client):
    response = client.post("/v1/auth/login", data="{not json", content_type="application/json")
    assert_envelope(response, 400, "malformed_json")


def test_validation_error_names_every_field(client):
    response = client.post("/v1/auth/register", json={"email": "nope", "password": 5, "extra": 1})
    error = assert_envelope(response, 422, "validation_error")
    assert set(error["details"]) == {"email", "password", "extra"}


def test_non_object_body_is_422(client):
    error = assert_envelope(client.post("/v1/auth/login", json=[1, 2]), 422, "validation_error")
    assert error["details"]


def test_body_over_one_mebibyte_is_413_and_nothing_is_written(client):
    big = "x" * (1024 * 1024 + 1)
    response = client.post("/v1/auth/register", json={"email": "big@example.com", "password": big})
    assert_envelope(response, 413, "payload_too_large")
    assert User.select().count() == 0


def test_body_just_under_the_limit_is_parsed(client):
    padding = "x" * (1024 * 1024 - 200)
    response = client.post("/v1/auth/login", json={"email": "a@example.com", "password": "p", "pad": padding})
    error = assert_envelope(response, 422, "validation_error")
    assert "pad" in error["details"]


def test_unexpected_exception_is_500_with_request_id_and_logged(make_app, caplog):
    app = make_app()

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/boom", headers={"X-Request-ID": "trace-12345678"})
    error = assert_envelope(response, 500, "internal_error")
    assert error["details"]["request_id"] == "trace-12345678"
    assert "secret internals" not in response.get_data(as_text=True)
    assert response.headers["X-Request-ID"] == "trace-12345678"
    assert any("trace-12345678" in record.getMessage() for record in caplog.records)


def test_bogus_request_id_is_replaced(client):
    response = client.get("/healthz", headers={"X-Request-ID": "<script>"})
    assert response.headers["X-Request-ID"] != "<script>"
    assert len(response.headers["X-Request-ID"]) == 32


@pytest.mark.parametrize("header", ["Bearer", "Basic abc", "Bearer a.b.c", "Bearer " + "x" * 5000])
def test_bad_authorization_headers_are_401_envelopes(client, header):
    error = assert_envelope(client.post("/v1/auth/logout", headers={"Authorization": header}), 401)
    assert error["code"] in ("authorization_required", "invalid_token")
