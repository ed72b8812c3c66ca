"""No log line carries personal data (issue 14, item 6): a request that
fails on a unique key, or with an exception that quotes personal data,
answers in the envelope and leaves no email, phone, push token,
installation id or coordinates in any log record, tracebacks included.

Each test builds its app in the test body: the redaction filter goes on
the handlers present when the app is built, pytest's capture included."""
import io
import logging
import uuid

import pytest

from models import Device, PushToken, User
from models.base import utcnow
from tests.consent_helpers import new_user, put_consents
from tests.device_helpers import add_device, ago

LATITUDE, LONGITUDE = 31.234567, 121.456789
FORMAT = logging.Formatter("%(levelname)s %(name)s %(message)s")


def logged_text(caplog):
    """Every captured record of every level as written, tracebacks included."""
    return "\n".join(FORMAT.format(record) for record in caplog.records) + "\n" + caplog.text


def personal_data_of_a_user(client):
    """A user with an email, phone, device, push token and precise locations;
    returns the session, its device and the values no log may carry."""
    session = new_user(client, email=f"Log.Probe-{uuid.uuid4().hex[:6]}@Example.org", phone="+8613987654321")
    headers = session["headers"]
    put_consents(client, headers, device_info=True, location=True, precise_location=True, service_push=True)
    installation_id = str(uuid.uuid4())
    device = add_device(client, headers, installation_id=installation_id)
    token = "log-probe:APA91b" + uuid.uuid4().hex * 4
    assert client.put(f"/v1/devices/{device['id']}/push-token", json={"token": token},
                      headers=headers).status_code == 200
    response = client.post(f"/v1/devices/{device['id']}/locations", headers=headers,
                           json={"latitude": LATITUDE, "longitude": LONGITUDE, "captured_at": ago(minutes=1)})
    assert response.status_code == 201, response.json
    email = session["user"]["email"]
    needles = {"email": email, "normalized email": email.lower(), "phone": "8613987654321", "push token": token,
               "installation id": installation_id, "latitude": repr(LATITUDE), "longitude": repr(LONGITUDE)}
    return session, device, needles


def leaked(needles, text):
    return sorted(name for name, value in needles.items() if value.lower() in text.lower())


DUPLICATES = {
    "email": lambda user, device: User.create(
        email=user.email, email_normalized=user.email_normalized, password_hash="x", created_at=utcnow()),
    "installation id": lambda user, device: Device.create(
        user=user, installation_id=device.installation_id, platform="android", app_version="1.0.0",
        created_at=utcnow(), last_seen_at=utcnow()),
    "push token": lambda user, device: PushToken.create(
        device=Device.create(user=user, installation_id="second-phone", platform="android", app_version="1.0.0",
                             created_at=utcnow(), last_seen_at=utcnow()),
        token=PushToken.get(PushToken.device == device).token, provider="fcm", updated_at=utcnow()),
}


@pytest.mark.parametrize("duplicate", sorted(DUPLICATES))
def test_integrity_error_answers_conflict_and_logs_no_personal_data(make_app, caplog, duplicate):
    caplog.set_level(logging.DEBUG)
    app = make_app()

    @app.post("/test/duplicate/<device_id>")
    def insert_duplicate(device_id):  # an insert the serial checks did not foresee, as in a race
        device = Device.get_by_id(device_id)
        DUPLICATES[duplicate](device.user, device)
        return {}

    client = app.test_client()
    session, device, needles = personal_data_of_a_user(client)
    response = client.post(f"/test/duplicate/{device['id']}", headers=session["headers"])

    assert response.status_code == 409
    assert response.json["error"]["code"] == "conflict"
    assert set(response.json["error"]) == {"code", "message", "details"}
    assert leaked(needles, response.get_data(as_text=True)) == []
    text = logged_text(caplog)
    assert "integrity error answered 409" in text
    assert leaked(needles, text) == []


def test_unexpected_exception_quoting_personal_data_is_logged_redacted(make_app, caplog):
    caplog.set_level(logging.DEBUG)
    app = make_app()
    quoted = {}

    @app.get("/test/boom")
    def boom():
        raise RuntimeError(
            f"failed for {quoted['email']} at {LATITUDE}, {LONGITUDE} (phone {quoted['phone']}, token "
            f"{quoted['push token']})\nDETAIL:  Key (installation_id)=({quoted['installation id']}) already exists.")

    client = app.test_client()
    session, _device, needles = personal_data_of_a_user(client)
    quoted.update(needles)
    response = client.get("/test/boom", headers={**session["headers"], "X-Request-ID": "trace-privacy-1"})

    assert response.status_code == 500
    assert response.json["error"]["code"] == "internal_error"
    text = logged_text(caplog)
    assert "Traceback" in text and "RuntimeError" in text and "trace-privacy-1" in text
    assert leaked(needles, text) == []


def test_gunicorn_error_log_is_redacted(make_app, tmp_path):
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    config = Config()
    config.set("errorlog", str(tmp_path / "error.log"))
    gunicorn_log = Logger(config)  # as gunicorn sets it up before it loads the app
    token, email = "log-probe:APA91b" + "7f" * 40, "someone" + "@example.org"
    try:
        make_app()
        try:
            raise ValueError(f"token {token} of {email}")
        except ValueError:
            gunicorn_log.exception("Error handling request")
    finally:
        gunicorn_log.close_on_exec()
        for handler in gunicorn_log.error_log.handlers + gunicorn_log.access_log.handlers:
            handler.close()
        gunicorn_log.error_log.handlers.clear()
        gunicorn_log.access_log.handlers.clear()
    written = (tmp_path / "error.log").read_text()
    assert "Error handling request" in written and "ValueError" in written
    assert token not in written and email not in written


def test_worker_start_up_redacts_handlers_added_after_the_app(make_app):
    from core.worker import huey

    make_app()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # huey_consumer adds its handler after importing the app
    logging.getLogger("huey").addHandler(handler)
    try:
        huey._startup["redact_worker_logs"]()
        logging.getLogger("huey").error("Unhandled exception in task for %s", "someone@example.org")
    finally:
        logging.getLogger("huey").removeHandler(handler)
    assert "Unhandled exception in task for [email]" in stream.getvalue()


def test_rate_limited_login_logs_no_email(make_app, caplog):
    caplog.set_level(logging.DEBUG)
    app = make_app(RATELIMIT_LOGIN_ACCOUNT="2 per minute")
    client = app.test_client()
    email = new_user(client, email=f"Limited-{uuid.uuid4().hex[:6]}@Example.org")["user"]["email"]
    answers = [client.post("/v1/auth/login", json={"email": email, "password": "wrong password"}).status_code
               for _ in range(3)]

    assert answers[-1] == 429
    assert "exceeded" in logged_text(caplog)  # Flask-Limiter logs the key, which names the account
    assert leaked({"email": email}, logged_text(caplog)) == []
