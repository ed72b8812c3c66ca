"""Every route x {anonymous, owner, other user, admin, an installation} -> the
expected status (issue 7, issue 17), and every staff route x the staff roles
campaigns and privacy (issue 16). The routes come from the URL map: a new route without a row here
fails ``test_every_route_has_a_row``."""
import pytest

from models import Device
from models.base import utcnow
from push.unsubscribe import unsubscribe_token
from tests.consent_helpers import new_user
from tests.device_helpers import add_device, point
from tests.installation_helpers import new_installation
from tests.push_helpers import create_campaign
from tests.routes import all_routes

ROLES = ("anonymous", "owner", "other", "admin", "installation")


def row(anonymous, owner, other, admin, body=None, token="access", installation=403):
    """``installation``: what an installation's token gets (403 on a route for accounts only)."""
    return {"statuses": dict(zip(ROLES, (anonymous, owner, other, admin, installation))), "body": body,
            "token": token}


def public(status, body=None):
    return row(status, status, status, status, body, installation=status)


def own(status, body=None, token="access", installation=403):
    """Each signed-in role acts on its own data."""
    return row(401, status, status, status, body, token, installation)


def owners_device(status, body=None):
    """The owner's device: others, admins and installations included, see nothing."""
    return row(401, status, 404, 404, body, installation=404)


def installation_only(status, body=None):
    """The installation's own routes: accounts' tokens get 403."""
    return row(401, 403, 403, 403, body, installation=status)


def admin_only(status, body=None):
    return row(401, 403, 403, status, body)


MATRIX = {
    ("GET", "/healthz"): public(200),
    ("GET", "/readyz"): public(200),
    ("GET", "/metrics"): public(200),  # the test client is a loopback client
    ("GET", "/openapi.json"): public(200),
    ("GET", "/docs"): public(200),
    ("GET", "/docs/assets/<path:filename>"): public(200),
    ("GET", "/v1/permissions"): public(200),
    ("GET", "/v1/policy"): public(200),
    ("GET", "/v1/unsubscribe/<token>"): public(200),
    ("POST", "/v1/unsubscribe/<token>"): public(200),
    ("POST", "/v1/auth/register"): public(201, lambda w: {"email": w["fresh_email"](), "password": "0123456789ab"}),
    ("POST", "/v1/auth/login"): public(200, lambda w: {"email": w["owner"]["user"]["email"],
                                                       "password": "correct horse battery"}),
    ("POST", "/v1/auth/refresh"): own(200, token="refresh", installation=401),  # not a refresh token
    ("POST", "/v1/auth/logout"): own(204),
    ("POST", "/v1/auth/logout-all"): own(204),
    ("POST", "/v1/me/password"): own(204, lambda w: {"current_password": "correct horse battery",
                                                     "new_password": "another horse battery"}),
    ("GET", "/v1/me/sessions"): own(200),
    # the owner's session; an installation's token is refused before any lookup
    ("DELETE", "/v1/me/sessions/<uuid:session_id>"): row(401, 204, 404, 404, installation=403),
    ("GET", "/v1/me"): own(200),
    ("PATCH", "/v1/me"): own(200, lambda w: {"phone": "+86100000000"}),
    ("DELETE", "/v1/me"): own(204),
    ("GET", "/v1/me/consents"): own(200),
    ("PUT", "/v1/me/consents"): own(200, lambda w: {"consents": {"usage_statistics": True}}),
    ("GET", "/v1/me/consents/history"): own(200),
    ("GET", "/v1/me/consent-receipts/<receipt_id>"): row(401, 200, 404, 404),  # the owner's receipt
    ("GET", "/v1/consent-receipts/keys"): public(200),
    ("GET", "/v1/me/export"): own(200),
    ("GET", "/v1/me/locations"): own(200),
    ("DELETE", "/v1/me/locations"): own(204),
    ("GET", "/v1/devices"): own(200, installation=200),
    ("POST", "/v1/devices"): own(201, lambda w: {"installation_id": "matrix-install-" + w["fresh_email"]()[:8],
                                                 "platform": "ios", "app_version": "1.0"}, installation=201),
    ("POST", "/v1/installations"): public(201, lambda w: {"installation_id": "matrix-" + w["fresh_email"]()[:12],
                                                          "platform": "android", "app_version": "1.0"}),
    ("GET", "/v1/installation/consents"): installation_only(200),
    ("PUT", "/v1/installation/consents"): installation_only(200, lambda w: {"consents": {"usage_statistics": True}}),
    ("GET", "/v1/installation/consents/history"): installation_only(200),
    ("GET", "/v1/installation/consent-receipts/<receipt_id>"): installation_only(200),  # its own receipt
    ("GET", "/v1/installation/export"): installation_only(200),
    ("DELETE", "/v1/installation"): installation_only(204),
    ("GET", "/v1/devices/<uuid:device_id>"): owners_device(200),
    ("DELETE", "/v1/devices/<uuid:device_id>"): owners_device(204),
    ("POST", "/v1/devices/<uuid:device_id>/reports"): owners_device(201, lambda w: {"app_version": "1.1"}),
    ("PUT", "/v1/devices/<uuid:device_id>/push-token"): owners_device(200, lambda w: {"token": "t" * 40}),
    ("DELETE", "/v1/devices/<uuid:device_id>/push-token"): owners_device(204),
    ("POST", "/v1/devices/<uuid:device_id>/locations"): owners_device(201, lambda w: point()),
    ("POST", "/v1/devices/<uuid:device_id>/locations/batch"): owners_device(200, lambda w: {"locations": [point()]}),
    ("GET", "/v1/admin/campaigns"): admin_only(200),
    ("POST", "/v1/admin/campaigns"): admin_only(201, lambda w: {"name": "n", "kind": "service", "title": "t",
                                                                "body": "b"}),
    ("GET", "/v1/admin/campaigns/<uuid:campaign_id>"): admin_only(200),
    ("GET", "/v1/admin/campaigns/<uuid:campaign_id>/audience"): admin_only(200),
    ("POST", "/v1/admin/campaigns/<uuid:campaign_id>/send"): admin_only(202),
    ("POST", "/v1/admin/campaigns/<uuid:campaign_id>/cancel"): admin_only(200),
    ("POST", "/v1/admin/campaigns/<uuid:campaign_id>/resume"): admin_only(409),  # not paused
    ("POST", "/v1/admin/policies"): admin_only(201, lambda w: {"version": "2", "text": "t",
                                                               "changed_permissions": []}),
    ("GET", "/v1/admin/stats/devices"): admin_only(200),
    ("GET", "/v1/admin/stats/consents"): admin_only(200),
    ("GET", "/v1/admin/users/<uuid:user_id>/consents"): admin_only(200),
    ("POST", "/v1/admin/users/<uuid:user_id>/guardian-consent"): admin_only(201, lambda w: {
        "guardian_name": "G", "relationship": "mother", "evidence_ref": "e"}),
    ("DELETE", "/v1/admin/users/<uuid:user_id>/guardian-consent"): admin_only(204),
    ("GET", "/v1/admin/users"): admin_only(200),
    ("GET", "/v1/admin/users/<uuid:user_id>"): admin_only(200),
    ("DELETE", "/v1/admin/users/<uuid:user_id>"): admin_only(204, lambda w: {"confirm": w["owner"]["user"]["id"]}),
    ("GET", "/v1/admin/users/<uuid:user_id>/ledger"): admin_only(200),
    ("GET", "/v1/admin/users/<uuid:user_id>/export"): admin_only(200),
    ("GET", "/v1/admin/minors-awaiting-guardian"): admin_only(200),
    ("POST", "/v1/notifications"): admin_only(200, lambda w: {"user_id": w["owner"]["user"]["id"], "title": "t",
                                                              "body": "b"}),
    ("GET", "/v1/admin/staff"): admin_only(200),
    # the path names the world's only administrator: it may not demote or remove itself
    ("PATCH", "/v1/admin/staff/<uuid:staff_id>"): admin_only(409, lambda w: {"role": "campaigns"}),
    ("DELETE", "/v1/admin/staff/<uuid:staff_id>"): admin_only(409),
    ("GET", "/v1/admin/audit"): admin_only(200),
}
# Staff routes -> the roles besides admin that they admit; every other staff role gets 403.
STAFF_ROLES = ("campaigns", "privacy")
ADMITTED = {
    ("GET", "/v1/admin/campaigns"): {"campaigns"},
    ("POST", "/v1/admin/campaigns"): {"campaigns"},
    ("GET", "/v1/admin/campaigns/<uuid:campaign_id>"): {"campaigns"},
    ("GET", "/v1/admin/campaigns/<uuid:campaign_id>/audience"): {"campaigns"},
    ("POST", "/v1/admin/campaigns/<uuid:campaign_id>/send"): {"campaigns"},
    ("POST", "/v1/admin/campaigns/<uuid:campaign_id>/cancel"): {"campaigns"},
    ("POST", "/v1/admin/campaigns/<uuid:campaign_id>/resume"): {"campaigns"},
    ("POST", "/v1/notifications"): {"campaigns"},
    ("POST", "/v1/admin/policies"): {"privacy"},
    ("GET", "/v1/admin/stats/devices"): {"campaigns", "privacy"},
    ("GET", "/v1/admin/stats/consents"): {"campaigns", "privacy"},
    ("GET", "/v1/admin/users/<uuid:user_id>/consents"): {"privacy"},
    ("POST", "/v1/admin/users/<uuid:user_id>/guardian-consent"): {"privacy"},
    ("DELETE", "/v1/admin/users/<uuid:user_id>/guardian-consent"): {"privacy"},
    ("GET", "/v1/admin/users"): {"privacy"},
    ("GET", "/v1/admin/users/<uuid:user_id>"): {"privacy"},
    ("DELETE", "/v1/admin/users/<uuid:user_id>"): {"privacy"},
    ("GET", "/v1/admin/users/<uuid:user_id>/ledger"): {"privacy"},
    ("GET", "/v1/admin/users/<uuid:user_id>/export"): {"privacy"},
    ("GET", "/v1/admin/minors-awaiting-guardian"): {"privacy"},
    ("GET", "/v1/admin/staff"): set(),
    ("PATCH", "/v1/admin/staff/<uuid:staff_id>"): set(),
    ("DELETE", "/v1/admin/staff/<uuid:staff_id>"): set(),
    ("GET", "/v1/admin/audit"): set(),
}
QUERY = {"/v1/admin/stats/devices": "?by=model", "/v1/admin/users": "?email=nobody@example.com"}
ROUTES = [(method, rule) for method, rule, _ in all_routes()]


def test_every_route_has_a_row():
    assert sorted(set(ROUTES) - set(MATRIX)) == []
    assert sorted(set(MATRIX) - set(ROUTES)) == []
    staff_routes = {key for key, entry in MATRIX.items()
                    if entry["statuses"]["owner"] == 403 and entry["statuses"]["installation"] == 403}
    assert sorted(staff_routes ^ set(ADMITTED)) == []


@pytest.fixture
def world(app, client, admin):
    owner, other = new_user(client), new_user(client)
    receipt = client.put("/v1/me/consents", json={"consents": {"location": True, "service_push": True,
                                                                "device_info": True}},
                         headers=owner["headers"]).json["receipts"][0]
    device = add_device(client, owner["headers"])
    client.put(f"/v1/devices/{device['id']}/push-token", json={"token": "owner-token-" + "x" * 40},
               headers=owner["headers"])
    campaign = create_campaign(client, admin, kind="service")
    client.post(f"/v1/admin/users/{owner['user']['id']}/guardian-consent", headers=admin["headers"],
                json={"guardian_name": "G", "relationship": "r", "evidence_ref": "e"})
    with app.app_context():
        link = unsubscribe_token(owner["user"]["id"], utcnow())
    installation = new_installation(client)
    installation_receipt = client.put("/v1/installation/consents", json={"consents": {"location": True}},
                                      headers=installation["headers"]).json["receipts"][0]
    installation.update(access_token=installation["token"], refresh_token=installation["token"])
    counter = iter(range(10**6))
    session_id = client.get("/v1/me/sessions", headers=owner["headers"]).json["items"][0]["id"]
    return {
        "owner": owner, "other": other, "session_id": session_id, "admin": admin, "device": device, "campaign": campaign,
        "link": link, "receipt": receipt, "installation": installation, "installation_receipt": installation_receipt,
        "fresh_email": lambda: f"matrix{next(counter)}-{owner['user']['id'][:6]}@example.com",
    }


def path_for(rule, world):
    receipt = world["installation_receipt"] if rule.startswith("/v1/installation/") else world["receipt"]
    path = (rule.replace("<uuid:device_id>", world["device"]["id"])
            .replace("<uuid:campaign_id>", world["campaign"]["id"])
            .replace("<uuid:user_id>", world["owner"]["user"]["id"])
            .replace("<uuid:staff_id>", world["admin"]["user"]["id"])
            .replace("<uuid:session_id>", world["session_id"])
            .replace("<token>", world["link"])
            .replace("<receipt_id>", receipt)
            .replace("<path:filename>", "swagger-ui.css"))
    return path + QUERY.get(rule, "")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method,rule", sorted(MATRIX))
def test_route_answers_each_role_as_expected(client, world, method, rule, role):
    entry = MATRIX[(method, rule)]
    headers = {}
    if role != "anonymous":
        session = world[role]
        headers = {"Authorization": f"Bearer {session[entry['token'] + '_token']}"}
    body = entry["body"](world) if entry["body"] else None
    response = client.open(path_for(rule, world), method=method, json=body, headers=headers)
    assert response.status_code == entry["statuses"][role], response.get_data(as_text=True)[:300]
    if response.status_code >= 400:
        assert set(response.json["error"]) == {"code", "message", "details"}
    if rule.startswith("/v1/devices/<") and role in ("other", "admin"):
        assert Device.select().where(Device.id == world["device"]["id"]).exists()


@pytest.mark.parametrize("role", STAFF_ROLES)
@pytest.mark.parametrize("method,rule", sorted(ADMITTED))
def test_staff_route_answers_each_staff_role_as_its_roles_say(client, auth, world, method, rule, role):
    """A route a role is not admitted to answers 403 (a campaigns user on a
    user's record, privacy on campaigns, both on staff management); one it
    is admitted to answers what it answers an administrator."""
    entry = MATRIX[(method, rule)]
    session = auth.staff(role)
    body = entry["body"](world) if entry["body"] else None
    response = client.open(path_for(rule, world), method=method, json=body, headers=session["headers"])
    expected = entry["statuses"]["admin"] if role in ADMITTED[(method, rule)] else 403
    assert response.status_code == expected, response.get_data(as_text=True)[:300]
    if expected == 403:
        assert response.json["error"]["code"] == "forbidden"
