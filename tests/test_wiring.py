"""Explicit wiring: a process that imports nothing but ``create_app`` has
every withdrawal effect registered, and each way of withdrawing consent
deletes the data it covered. Run in a fresh interpreter, so no module
the test suite imported can have filled a registry."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = r'''
import json, sqlite3, sys, uuid
from datetime import date

from app import create_app

directory = sys.argv[1]
app = create_app({"TESTING": True, "INSTANCE_PATH": directory, "DATABASE_URL": f"sqlite:///{directory}/app.db",
                  "SECRET_KEY": "s" * 48, "JWT_SECRET_KEY": "j" * 48, "HUEY_IMMEDIATE": True,
                  "PASSWORD_HASH_TIME_COST": 1, "PASSWORD_HASH_MEMORY_KIB": 1024})
from consent import catalogue
from consent.effects import effects
stored = [p.key for p in catalogue.PERMISSIONS if p.stores_data]
registered = {key: len(effects.registered(key)) for key in stored}

runner, client = app.test_cli_runner(), app.test_client()
assert runner.invoke(args=["migrate"]).exit_code == 0
assert runner.invoke(args=["create-admin", "admin@example.com", "--password", "correct horse battery"]).exit_code == 0
sys.path.insert(0, ".")
from tests.device_helpers import FULL_DETAILS, device_body, point

def login(email):
    token = client.post("/v1/auth/login", json={"email": email, "password": "correct horse battery"}).json
    return {"Authorization": "Bearer " + token["access_token"]}

def person(birth_date=None, guardian=False, **consents):
    email = f"u-{uuid.uuid4().hex[:8]}@example.com"
    extra = {"birth_date": birth_date} if birth_date else {}
    user = client.post("/v1/auth/register", json={"email": email, "password": "correct horse battery", **extra}).json
    headers = login(email)
    if guardian:
        assert client.post(f"/v1/admin/users/{user['user']['id']}/guardian-consent", headers=admin,
                           json={"guardian_name": "G", "relationship": "mother", "evidence_ref": "doc"}).status_code == 201
    assert client.put("/v1/me/consents", json={"consents": consents}, headers=headers).status_code == 200
    device = client.post("/v1/devices", json=device_body(), headers=headers).json["device"]
    assert client.post(f"/v1/devices/{device['id']}/reports", json={"app_version": "3.12.1", **FULL_DETAILS},
                       headers=headers).status_code == 201
    if consents.get("service_push") or consents.get("marketing_push"):
        assert client.put(f"/v1/devices/{device['id']}/push-token", json={"token": "tok-" + uuid.uuid4().hex + "x" * 100},
                          headers=headers).status_code == 200
    if consents.get("location"):
        assert client.post(f"/v1/devices/{device['id']}/locations", json=point(), headers=headers).status_code == 201
    return user["user"]["id"].replace("-", ""), headers

def held(user_id):
    """What the database holds of the user, read with sqlite3, not the app."""
    with sqlite3.connect(f"{directory}/app.db") as conn:
        devices = "SELECT id FROM device WHERE replace(user_id, '-', '') = ?"
        count = lambda table: conn.execute(f"SELECT COUNT(*) FROM {table} WHERE device_id IN ({devices})",
                                           (user_id,)).fetchone()[0]
        gated = conn.execute("SELECT COUNT(*) FROM device WHERE replace(user_id, '-', '') = ? AND model IS NOT NULL",
                             (user_id,)).fetchone()[0]
        return {"location": count("location"), "device_report": count("device_report"),
                "push_token": count("push_token"), "gated_device_fields": gated}

admin = login("admin@example.com")
everything = dict(device_info=True, location=True, precise_location=True, service_push=True, marketing_push=True)
results = {}

user_id, headers = person(**everything)
results["before"] = held(user_id)
client.put("/v1/me/consents", json={"consents": {key: False for key in everything}}, headers=headers)
results["put_consents"] = held(user_id)

from models.consent import Consent
from push.unsubscribe import unsubscribe_token
user_id, headers = person(marketing_push=True)
with app.app_context():
    grant = Consent.get((Consent.user == user_id) & (Consent.permission == "marketing_push"))
    link = unsubscribe_token(user_id, grant.updated_at)
assert client.post(f"/v1/unsubscribe/{link}").status_code == 200
results["unsubscribe_link"] = held(user_id)

minor = date.today().replace(year=date.today().year - 15).isoformat()
user_id, headers = person(birth_date=minor, guardian=True, device_info=True, location=True, service_push=True)
assert client.delete(f"/v1/admin/users/{uuid.UUID(user_id)}/guardian-consent", headers=admin).status_code == 204
results["guardian_revoked"] = held(user_id)

user_id, headers = person(device_info=True, location=True, service_push=True)
assert client.patch("/v1/me", json={"birth_date": minor}, headers=headers).status_code == 200
results["birth_date_corrected"] = held(user_id)
print(json.dumps({"stored": stored, "registered": registered, "results": results}))
'''


def test_a_process_that_imports_only_create_app_withdraws_with_effect(tmp_path):
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(report["stored"]) == {"device_info", "location", "precise_location", "service_push", "marketing_push"}
    assert all(report["registered"][key] > 0 for key in report["stored"]), report["registered"]
    results = report["results"]
    assert results["before"] == {"location": 1, "device_report": 1, "push_token": 1, "gated_device_fields": 1}
    nothing = {"location": 0, "device_report": 0, "push_token": 0, "gated_device_fields": 0}
    assert results["put_consents"] == nothing
    assert results["unsubscribe_link"]["push_token"] == 0  # marketing was its only push permission
    assert results["guardian_revoked"] == nothing
    assert results["birth_date_corrected"] == nothing
