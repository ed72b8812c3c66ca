"""What an erasure leaves on disk (issue 14, item 5): nothing in SQLite's
files, and a VACUUM of the erased tables on PostgreSQL."""
import sqlite3
import struct
import time
from pathlib import Path

import pytest

from models.base import db
from tests.conftest import TEST_DATABASE_URL
from tests.consent_helpers import new_user, put_consents
from tests.device_helpers import add_device, ago

LATITUDE, LONGITUDE = 31.234567, 121.456789
TABLES_ERASURE_TOUCHES = ("user", "device", "push_token", "location", "device_report", "consent",
                          "consent_summary", "ledger_entry", "auth_session", "delivery", "guardian_consent",
                          "campaign", "campaign_slice")


def leave_traces(client):
    """A user with a distinctive value in every personal field; returns the
    session and those values as bytes as SQLite stores them."""
    email = "Residue.Probe-7f3a@Example.org"
    session = new_user(client, email=email, phone="+8613987654321")
    headers = session["headers"]
    put_consents(client, headers, device_info=True, location=True, precise_location=True, service_push=True)
    device = add_device(client, headers, installation_id="residue-installation-5d1c", model="ResidueModel-Q9",
                        carrier="ResidueCarrier-K4")
    token = "residue-push-token:APA91b" + "Zq8" * 45
    response = client.put(f"/v1/devices/{device['id']}/push-token", json={"token": token}, headers=headers)
    assert response.status_code == 200, response.json
    response = client.post(f"/v1/devices/{device['id']}/reports", headers=headers,
                           json={"app_version": "3.12.1", "carrier": "ResidueReportCarrier-J2"})
    assert response.status_code in (200, 201), response.json
    for minutes in (1, 2, 3):
        response = client.post(f"/v1/devices/{device['id']}/locations", headers=headers,
                               json={"latitude": LATITUDE, "longitude": LONGITUDE,
                                     "captured_at": ago(minutes=minutes)})
        assert response.status_code == 201, response.json
        assert response.json["location"]["precision"] == "precise"
    texts = (email, email.lower(), "8613987654321", "residue-installation-5d1c", "ResidueModel-Q9",
             "ResidueCarrier-K4", "ResidueReportCarrier-J2", token)
    needles = {text: text.encode() for text in texts}
    needles.update({repr(value): struct.pack(">d", value) for value in (LATITUDE, LONGITUDE)})  # SQLite's REAL
    return session, needles


def database_files(path):
    return [file for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if file.exists()]


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="reads SQLite's database, WAL and shared-memory files")
def test_erased_values_are_in_no_sqlite_file_while_another_connection_is_open(app, client):
    path = Path(db.obj.database)
    other_process = sqlite3.connect(path)  # another app process: its open connection keeps the WAL
    try:
        other_process.execute("SELECT count(*) FROM user").fetchall()
        session, needles = leave_traces(client)
        on_disk = b"".join(file.read_bytes() for file in database_files(path))
        assert all(value in on_disk for value in needles.values())  # the probe can see them at all

        response = client.delete("/v1/me", headers=session["headers"])
        assert response.status_code == 204

        found = {name: file.name for file in database_files(path) for name, value in needles.items()
                 if value in file.read_bytes()}
        assert found == {}
    finally:
        other_process.close()


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="SQLite's pragma")
def test_sqlite_connections_zero_deleted_content(app):
    with app.test_request_context():
        db.connect(reuse_if_open=True)
        assert db.execute_sql("PRAGMA secure_delete").fetchone() == (1,)
    assert db.obj._pragmas and dict(db.obj._pragmas)["secure_delete"] == 1  # also on builds where it is off


def last_vacuums():
    import psycopg2

    connection = psycopg2.connect(TEST_DATABASE_URL)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT relname, last_vacuum FROM pg_stat_user_tables WHERE schemaname = 'public'")
            return dict(cursor.fetchall())
    finally:
        connection.close()


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="VACUUM and pg_stat_user_tables are PostgreSQL's")
def test_erasure_vacuums_every_table_it_touched_on_postgres(client):
    session, _ = leave_traces(client)
    assert all(last_vacuums()[table] is None for table in TABLES_ERASURE_TOUCHES)

    response = client.delete("/v1/me", headers=session["headers"])
    assert response.status_code == 204

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        not_vacuumed = [table for table in TABLES_ERASURE_TOUCHES if last_vacuums()[table] is None]
        if not not_vacuumed:
            break
        time.sleep(0.2)
    assert not_vacuumed == []
