"""Fixtures in the Flask tutorial's shape: a fresh database per test (SQLite
by default, PostgreSQL when TEST_DATABASE_URL is set), ``client``,
``runner`` and helpers that return auth headers. Every log record of the
run is also written to one file, which the last test greps for the
personal data the helpers handed out (``remember``)."""
import logging
import os
import re
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from app import create_app  # noqa: E402
from core import redaction  # noqa: E402
from models.base import db  # noqa: E402
from models.schema import migrate  # noqa: E402

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
PASSWORD = "correct horse battery"


def reset_postgres(url):
    import psycopg2

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    conn.close()


def flush_redis(url):
    import redis

    redis.Redis.from_url(url).flushdb()


def receipt_signing_key():
    """A fresh Ed25519 key as PEM text: production refuses to start without one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def base_config(tmp_path):
    """Config of a test app on a fresh, migrated database."""
    if TEST_DATABASE_URL:
        reset_postgres(TEST_DATABASE_URL)
        database_url = TEST_DATABASE_URL
    else:
        database_url = "sqlite:///" + str(tmp_path / "test.db")
    if TEST_REDIS_URL:
        flush_redis(TEST_REDIS_URL)
    return {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "SECRET_KEY": "s" * 48,
        "JWT_SECRET_KEY": "j" * 48,
        "PASSWORD_HASH_TIME_COST": 1,
        "PASSWORD_HASH_MEMORY_KIB": 1024,
        "RATELIMIT_LOGIN": "1000 per minute",
        "RATELIMIT_LOGIN_ACCOUNT": "1000 per minute",
        "RATELIMIT_REGISTER": "1000 per minute",
        "RATELIMIT_INSTALLATION": "1000 per minute",
        "RATELIMIT_REFRESH": "1000 per minute",
        "RATELIMIT_UNSUBSCRIBE": "1000 per minute",
        "RATELIMIT_LOCATIONS": "10000 per minute",
        "RATELIMIT_LOCATION_BATCHES": "10000 per minute",
        "RATELIMIT_KEY_PREFIX": "test-" + uuid.uuid4().hex,
        "HUEY_IMMEDIATE": True,
        "PUSH_RETRY_BASE_SECONDS": 0.01,
        "PUSH_RETRY_MAX_SECONDS": 0.05,
    }


@pytest.fixture
def make_app(tmp_path):
    """Build an app on the test's database; later calls reuse the database
    (a restart), with overrides."""
    config = base_config(tmp_path)
    built = []

    def factory(**overrides):
        app = create_app({**config, **overrides})
        if not built:
            migrate()
        built.append(app)
        return app

    yield factory
    if not db.is_closed():
        db.close()
    if hasattr(db.obj, "close_all"):
        db.obj.close_all()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


class AuthActions:
    """Registration and login through the API, as the Flask tutorial's
    ``AuthActions``, and staff made with ``create-admin``: each returns the
    session JSON with ready ``headers``."""

    def __init__(self, client, runner=None):
        self._client = client
        self._runner = runner

    def register(self, email=None, password=PASSWORD, **extra):
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        remember("email", email)
        response = self._client.post("/v1/auth/register", json={"email": email, "password": password, **extra})
        assert response.status_code == 201, response.json
        return self._with_headers(response.json)

    def login(self, email, password=PASSWORD):
        response = self._client.post("/v1/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.json
        return self._with_headers(response.json)

    def staff(self, role="admin", email=None, password=PASSWORD):
        """A staff account of ``role`` (admin, campaigns or privacy), signed in."""
        email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        result = self._runner.invoke(args=["create-admin", email, "--password", password, "--role", role])
        assert result.exit_code == 0, result.output
        return self.login(email, password)

    @staticmethod
    def _with_headers(session):
        session["headers"] = bearer(session["access_token"])
        return session


def register(client, email=None, password=PASSWORD, **extra):
    return AuthActions(client).register(email, password, **extra)


@pytest.fixture
def auth(client, app):
    return AuthActions(client, app.test_cli_runner())


@pytest.fixture
def user(auth):
    """A registered user: its session JSON plus ready headers."""
    return auth.register()


@pytest.fixture
def admin(auth):
    return auth.staff("admin")


@pytest.fixture
def serve():
    """``serve(app)`` puts the app behind a threaded werkzeug server on a
    free port, for requests that must really run at the same time, and
    returns its base URL; the servers stop after the test."""
    from werkzeug.serving import make_server

    running = []

    def start(app):
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in running:
        server.shutdown()
        thread.join()


@pytest.fixture
def fake_fcm():
    """A running FCM-compatible server (``devtools.fakefcm``); stopped after the test."""
    from devtools.fakefcm import FakeFcmServer

    server = FakeFcmServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fcm_server(fake_fcm):
    """The FCM-compatible server, under the name the push tests use."""
    return fake_fcm


@pytest.fixture
def push_app(make_app, fcm_server, tmp_path):
    """An app whose FCM provider talks to ``fcm_server`` through the real
    firebase-admin SDK; the provider is closed after the test."""
    from tests.push_helpers import fcm_config

    app = make_app(**fcm_config(fcm_server, tmp_path))
    yield app
    provider = app.extensions.get("push_provider")
    if provider is not None:
        provider.close()


BACKEND_SKIPS = {
    "postgres": (lambda: not TEST_DATABASE_URL, "needs PostgreSQL: set TEST_DATABASE_URL"),
    "redis": (lambda: not TEST_REDIS_URL, "needs Redis: set TEST_REDIS_URL"),
    "sqlite": (lambda: bool(TEST_DATABASE_URL), "checks SQLite; this run uses PostgreSQL"),
}


def pytest_collection_modifyitems(items):
    """Backend markers skip with their reason, so a test for another backend
    is reported as skipped, never passed; tests marked ``last`` run after
    all the others."""
    for item in items:
        for name, (missing, reason) in BACKEND_SKIPS.items():
            if item.get_closest_marker(name) and missing():
                item.add_marker(pytest.mark.skip(reason=reason))
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)  # stable: the order is kept otherwise


# -- the whole run's log, and the personal data the helpers used --------------

RUN_LOG = {"path": None, "tests_run": 0}
# Where the processes the tests start (huey consumers, ``python app.py``) write
# their output: one folder for the run, named in this variable for the helpers.
RUN_LOG_DIR = "TEST_RUN_LOG_DIR"
PERSONAL_DATA = {"email": set(), "push token": set(), "coordinate": set(), "installation id": set()}


def remember(kind, value):
    """Note personal data a helper put into the app, for the last test to look for in the logs."""
    if kind == "coordinate" and not re.fullmatch(r"-?\d+\.\d{4,}", repr(float(value))):
        return  # a round number (0.0, 31.2) is not telling: it stands for too much else in a log
    PERSONAL_DATA[kind].add(repr(float(value)) if kind == "coordinate" else str(value))


def pytest_configure(config):
    """Every record of every logger, at INFO and up, formatted with its
    traceback into one file, redacted as every handler of the app is."""
    folder = tempfile.mkdtemp(prefix="test-run-log-")
    path = os.path.join(folder, "run.log")
    os.makedirs(os.path.join(folder, "processes"), exist_ok=True)
    os.environ[RUN_LOG_DIR] = os.path.join(folder, "processes")
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(redaction.REDACT)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    RUN_LOG["path"] = path


def process_log(path):
    """A log file for a process a test starts, opened for appending: it is
    written in the run's folder (``TEST_RUN_LOG_DIR``), where the last test
    reads it, and ``path`` (where the test reads it) links to it."""
    path = str(path)
    folder = os.environ.get(RUN_LOG_DIR)
    if folder and not os.path.lexists(path):
        kept = os.path.join(folder, f"{uuid.uuid4().hex[:12]}-{os.path.basename(path)}")
        open(kept, "ab").close()
        os.symlink(kept, path)
    return open(path, "ab")


def pytest_runtest_logfinish(nodeid, location):
    RUN_LOG["tests_run"] += 1


def free_port():
    """A port on 127.0.0.1 nobody listens on, in 20000-60000."""
    while True:
        port = random.randint(20000, 60000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


class PrivateRedis:
    """A ``redis-server`` of the test's own, without persistence: ``kill``
    loses whatever it held, as a crashed production Redis without AOF would;
    ``freeze`` leaves it accepting connections and answering nothing."""

    def __init__(self, log_path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = log_path
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def freeze(self):
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self):
        self.process.send_signal(signal.SIGCONT)

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path):
    """A running PrivateRedis on a free port; killed after the test."""
    server = PrivateRedis(tmp_path / "redis.log").start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def silent_listener():
    """A port that accepts connections and never answers: a server that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", free_port()))
    listener.listen(64)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def pytest_terminal_summary(terminalreporter):
    from tests.blueprints import test_fuzz

    if test_fuzz.TALLY["examples"]:
        terminalreporter.write_line(
            f"fuzz: {test_fuzz.TALLY['operations']} operations, {test_fuzz.TALLY['examples']} examples "
            "(as user and admin, valid and invalid input)")

