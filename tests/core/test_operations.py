"""Health endpoints, migrations and the command line."""
import pytest

from app import create_app
from models.base import db
from models import AuthSession, User
from models.schema import migration_runner, pending_migrations
from tests.conftest import PASSWORD, ROOT, TEST_REDIS_URL, base_config, bearer, register


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_names_each_check_ok(client):
    expected = {"status": "ok", "database": "ok", "migrations": "ok", **({"redis": "ok"} if TEST_REDIS_URL else {}),
                "push": "ok", "worker": "ok"}
    assert client.get("/readyz").json == expected


def test_readyz_is_503_in_the_envelope_when_the_database_is_gone(tmp_path):
    app = create_app({**base_config(tmp_path), "DATABASE_URL": "sqlite:///" + str(tmp_path / "missing-dir" / "x.db")})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["error"]["code"] == "database_unavailable"
    assert response.headers["Retry-After"] == "5"


@pytest.mark.sqlite
def test_sqlite_runs_in_wal_with_foreign_keys(app):
    with db.connection_context():
        assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute_sql("PRAGMA busy_timeout").fetchone()[0] >= 1000


@pytest.mark.postgres
def test_postgresql_sessions_run_without_jit(app):
    with db.connection_context():
        assert db.execute_sql("SHOW jit").fetchone()[0] == "off"


def _last_query_of(backend_pid, observer):
    with observer.cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (backend_pid,))
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_postgresql_pool_probes_only_connections_that_sat_idle(app):
    """A connection checked in moments ago is handed out again as it is; one
    that sat past TRUST_SECONDS is probed first, and a dead one replaced."""
    import psycopg2

    from core.database import PostgresPool, connect_database
    from tests.conftest import TEST_DATABASE_URL

    pool = connect_database(TEST_DATABASE_URL, 2)
    observer = psycopg2.connect(TEST_DATABASE_URL)
    observer.autocommit = True
    try:
        assert isinstance(pool, PostgresPool)
        with pool.connection_context():
            backend = pool.execute_sql("SELECT pg_backend_pid(), 'marker'").fetchone()[0]
        with pool.connection_context():
            assert pool.connection().get_backend_pid() == backend
            assert "marker" in _last_query_of(backend, observer)  # no probe was sent

        pool.TRUST_SECONDS = 0
        with pool.connection_context():
            assert pool.connection().get_backend_pid() == backend
            assert _last_query_of(backend, observer) == "SELECT 1"

        with observer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (backend,))
        with pool.connection_context():
            assert pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != backend
    finally:
        observer.close()
        pool.close_all()


def test_migrate_command_is_idempotent(runner, app):
    result = runner.invoke(args=["migrate"])
    assert result.exit_code == 0
    assert "nothing to apply" in result.output
    assert pending_migrations() == []


def test_create_admin_creates_then_promotes(runner, client):
    result = runner.invoke(args=["create-admin", "Root@Example.com", "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    root = User.get(User.email_normalized == "root@example.com")
    assert root.role == "admin" and root.self_registered is False

    client.post("/v1/auth/register", json={"email": "later@example.com", "password": PASSWORD})
    assert User.by_email("later@example.com").role == "user"
    result = runner.invoke(args=["create-admin", "later@example.com", "--password", PASSWORD + "!",
                                 "--promote-existing"])
    assert result.exit_code == 0
    assert User.by_email("later@example.com").role == "admin"
    login = client.post("/v1/auth/login", json={"email": "later@example.com", "password": PASSWORD + "!"})
    assert login.status_code == 200
    assert login.json["user"]["role"] == "admin"


def test_create_admin_refuses_a_self_registered_account_without_promote_existing(runner, client):
    session = register(client, email="squatter@example.com")
    before = User.by_email("squatter@example.com")
    assert before.self_registered is True
    result = runner.invoke(args=["create-admin", "Squatter@example.com", "--password", PASSWORD + "!"])
    assert result.exit_code != 0
    assert "registered through the app" in result.output and "--promote-existing" in result.output
    after = User.by_email("squatter@example.com")
    assert (after.role, after.password_hash) == ("user", before.password_hash)
    assert AuthSession.get().revoked_at is None
    assert client.get("/v1/me", headers=bearer(session["access_token"])).status_code == 200


def test_promoting_an_existing_account_revokes_every_session(runner, client):
    first = register(client, email="promoted@example.com")
    second = client.post("/v1/auth/login", json={"email": "promoted@example.com", "password": PASSWORD}).json
    result = runner.invoke(args=["create-admin", "promoted@example.com", "--password", PASSWORD + "!",
                                 "--promote-existing"])
    assert result.exit_code == 0, result.output
    for session in (first, second):
        for token in (session["access_token"], session["refresh_token"]):
            response = client.post("/v1/auth/logout", headers=bearer(token))
            assert response.status_code == 401 and response.json["error"]["code"] == "token_revoked"
    stored = AuthSession.select().where(AuthSession.user == User.by_email("promoted@example.com"))
    assert {(s.revoked_at is not None, s.revoked_reason) for s in stored} == {(True, "role_changed")}


def test_a_new_admin_password_revokes_the_admins_sessions(runner, client, admin):
    email = admin["user"]["email"]
    result = runner.invoke(args=["create-admin", email, "--password", PASSWORD + "!"])
    assert result.exit_code == 0, result.output
    response = client.get("/v1/admin/stats/consents", headers=admin["headers"])
    assert response.status_code == 401 and response.json["error"]["code"] == "token_revoked"
    assert AuthSession.get().revoked_reason == "password_changed"


def test_create_admin_refuses_a_short_password(runner):
    result = runner.invoke(args=["create-admin", "x@example.com", "--password", "short"])
    assert result.exit_code != 0
    assert User.select().count() == 0


def load_migration(name):
    import importlib.util
    import os

    path = os.path.join(ROOT, "migrations", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"migration_{name}", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    return migration


def test_consent_summary_migration_fills_from_existing_consents(client):
    """Migration 0008 builds the summary from the ``consent`` rows already there."""
    from tests.consent_helpers import assert_summary_follows_consent, new_user, put_consents

    for n in range(3):
        person = new_user(client)
        put_consents(client, person["headers"], location=bool(n % 2), marketing_push=True, device_info=n == 2)
    summary, refused = load_migration("0008_consent_summary"), load_migration("0010_refused_grants")
    with db.connection_context():
        migrator = migration_runner().migrator
        refused.down(migrator, db.obj)
        summary.down(migrator, db.obj)
        summary.up(migrator, db.obj)
        refused.up(migrator, db.obj)
        from models import ConsentSummary
        assert ConsentSummary.select().count() == 3
        assert_summary_follows_consent()


def test_refused_grants_migration_marks_what_current_minors_hold_without_effect(client, admin):
    from models import Consent
    from tests.consent_helpers import assert_summary_follows_consent, new_user, put_consents, years_ago

    minor = new_user(client, birth_date=years_ago(15).isoformat())
    put_consents(client, minor["headers"], location=True, marketing_push=True, device_info=False)
    guarded = new_user(client, birth_date=years_ago(16).isoformat())
    client.post(f"/v1/admin/users/{guarded['user']['id']}/guardian-consent", headers=admin["headers"],
                json={"guardian_name": "G", "relationship": "father", "evidence_ref": "ref"})
    put_consents(client, guarded["headers"], location=True, partner_sharing=True)
    adult = new_user(client, birth_date=years_ago(30).isoformat())
    put_consents(client, adult["headers"], location=True, marketing_push=True)
    migration = load_migration("0010_refused_grants")
    with db.connection_context():
        migrator = migration_runner().migrator
        migration.down(migrator, db.obj)
        migration.up(migrator, db.obj)
        marked = {(str(c.user_id), c.permission) for c in Consent.select().where(Consent.refused == True)}  # noqa: E712
        assert marked == {(minor["user"]["id"], "location"), (minor["user"]["id"], "marketing_push"),
                          (guarded["user"]["id"], "partner_sharing")}
        assert_summary_follows_consent()


def test_account_origin_migration_counts_existing_users_as_self_registered(client, runner):
    """Migration 0009: before it, only create-admin made administrators."""
    import importlib.util
    import os

    from playhouse.migrate import SchemaMigrator

    register(client, email="old-user@example.com")
    assert runner.invoke(args=["create-admin", "old-admin@example.com", "--password", PASSWORD]).exit_code == 0
    path = os.path.join(ROOT, "migrations", "0009_account_origin_refresh_grace.py")
    spec = importlib.util.spec_from_file_location("migration_0009", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with db.connection_context():
        migrator = SchemaMigrator.from_database(db.obj)
        migration.down(migrator, db.obj)
        migration.up(migrator, db.obj)
    assert User.by_email("old-user@example.com").self_registered is True
    assert User.by_email("old-admin@example.com").self_registered is False
