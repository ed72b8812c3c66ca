"""One-click unsubscribe links (issue 14, item 9): a link withdraws only the
grant of marketing_push its push was sent under, expires, names nobody
readably, and after erasure answers as a link never issued."""
import base64
import uuid
from datetime import timedelta

import itsdangerous

from models import Consent, LedgerEntry
from models.base import utcnow
from push.unsubscribe import unsubscribe_token
from tests.consent_helpers import put_consents
from tests.push_helpers import create_campaign, member, send


def link_of(fcm_server, person, nth=-1):
    payloads = [p for t, p, _ in fcm_server.requests if t == person["token"]]
    return payloads[nth]["message"]["data"]["unsubscribe_token"]


def marketing_consent(person):
    return Consent.get((Consent.user == person["user_id"]) & (Consent.permission == "marketing_push"))


def link_withdrawals():
    return LedgerEntry.select().where(LedgerEntry.source == "unsubscribe_link").count()


def test_a_used_link_cannot_withdraw_a_later_grant(push_app, fcm_server, admin):
    client = push_app.test_client()
    person = member(client, {"marketing_push": True})
    send(client, admin, create_campaign(client, admin))
    old_link = link_of(fcm_server, person)
    assert client.post(f"/v1/unsubscribe/{old_link}").status_code == 200
    assert marketing_consent(person).granted is False and link_withdrawals() == 1
    assert client.post(f"/v1/unsubscribe/{old_link}").status_code == 200  # a second tap changes nothing
    assert link_withdrawals() == 1

    put_consents(client, person["session"]["headers"], marketing_push=True)  # the user opts in again
    for method in ("get", "post"):
        response = getattr(client, method)(f"/v1/unsubscribe/{old_link}")
        assert response.status_code == 410 and response.json["error"]["code"] == "link_expired"
    assert marketing_consent(person).granted is True
    assert link_withdrawals() == 1

    send(client, admin, create_campaign(client, admin, name="after the new grant"))
    assert client.post(f"/v1/unsubscribe/{link_of(fcm_server, person)}").status_code == 200
    assert marketing_consent(person).granted is False and link_withdrawals() == 2
    entry = LedgerEntry.select().order_by(LedgerEntry.id.desc()).first()
    assert (entry.permission, entry.granted, entry.source) == ("marketing_push", False, "unsubscribe_link")


def test_an_unused_link_cannot_withdraw_a_grant_made_after_its_push(push_app, fcm_server, admin):
    client = push_app.test_client()
    person = member(client, {"marketing_push": True})
    send(client, admin, create_campaign(client, admin))
    old_link = link_of(fcm_server, person)
    put_consents(client, person["session"]["headers"], marketing_push=False)  # withdrawn in the app
    put_consents(client, person["session"]["headers"], marketing_push=True)
    response = client.post(f"/v1/unsubscribe/{old_link}")
    assert response.status_code == 410 and response.json["error"]["code"] == "link_expired"
    assert marketing_consent(person).granted is True and link_withdrawals() == 0


def test_a_link_expires_after_unsubscribe_token_days(push_app, fcm_server, admin):
    client = push_app.test_client()
    person = member(client, {"marketing_push": True})
    assert push_app.config["UNSUBSCRIBE_TOKEN_DAYS"] == 90
    granted_at = marketing_consent(person).updated_at
    with push_app.app_context():
        stale = unsubscribe_token(person["user_id"], granted_at, issued_at=utcnow() - timedelta(days=90, minutes=1))
        fresh = unsubscribe_token(person["user_id"], granted_at, issued_at=utcnow() - timedelta(days=89))
    for method in ("get", "post"):
        response = getattr(client, method)(f"/v1/unsubscribe/{stale}")
        assert response.status_code == 410 and response.json["error"]["code"] == "link_expired"
    assert marketing_consent(person).granted is True and link_withdrawals() == 0

    push_app.config["UNSUBSCRIBE_TOKEN_DAYS"] = 30
    assert client.post(f"/v1/unsubscribe/{fresh}").status_code == 410
    assert marketing_consent(person).granted is True
    push_app.config["UNSUBSCRIBE_TOKEN_DAYS"] = 90
    assert client.post(f"/v1/unsubscribe/{fresh}").status_code == 200
    assert marketing_consent(person).granted is False and link_withdrawals() == 1


def test_a_link_carries_no_readable_user_id(push_app, fcm_server, admin):
    client = push_app.test_client()
    person = member(client, {"marketing_push": True})
    send(client, admin, create_campaign(client, admin))
    send(client, admin, create_campaign(client, admin, name="second"))
    first, second = link_of(fcm_server, person, 0), link_of(fcm_server, person, 1)
    user_id = uuid.UUID(person["user_id"])
    for link in (first, second):
        for part in link.split("."):
            decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
            for form in (str(user_id).encode(), user_id.hex.encode(), user_id.bytes):
                assert form not in decoded and form not in link.encode()
    assert first != second  # nothing in common that ties two messages to one person
    assert client.get(f"/v1/unsubscribe/{first}").status_code == 200


def test_after_erasure_a_link_answers_as_an_unknown_token(push_app, fcm_server, admin):
    client = push_app.test_client()
    person = member(client, {"marketing_push": True})
    send(client, admin, create_campaign(client, admin))
    link = link_of(fcm_server, person)
    assert client.get(f"/v1/unsubscribe/{link}").status_code == 200
    assert client.delete("/v1/me", headers=person["session"]["headers"]).status_code == 204
    for method in ("get", "post"):
        erased, unknown = (getattr(client, method)(f"/v1/unsubscribe/{token}") for token in (link, "x" * 40))
        assert (erased.status_code, erased.get_data()) == (unknown.status_code, unknown.get_data())
        assert erased.status_code == 400 and erased.json["error"]["code"] == "invalid_token"
    with push_app.app_context():
        never_issued = unsubscribe_token(uuid.uuid4(), utcnow())  # sealed by us, for nobody we know
    answers = [client.post(f"/v1/unsubscribe/{token}").get_data() for token in (never_issued, link)]
    assert answers[0] == answers[1]
    assert link_withdrawals() == 0
    assert Consent.select().where(Consent.user == person["user_id"]).count() == 0


def test_a_link_of_the_earlier_signed_form_answers_as_expired(push_app, fcm_server, admin):
    client = push_app.test_client()
    person = member(client, {"marketing_push": True})
    signer = itsdangerous.URLSafeSerializer(push_app.config["SECRET_KEY"], salt="marketing-unsubscribe")
    plain = base64.urlsafe_b64encode(f'{{"u":"{person["user_id"]}","c":"x"}}'.encode()).rstrip(b"=").decode()
    earlier = [signer.dumps({"u": person["user_id"], "c": "x" * 40}),  # compressed, the first form
               signer.make_signer().sign(plain).decode()]  # uncompressed, the second
    assert earlier[0].startswith(".") and not earlier[1].startswith(".")
    for link in earlier:
        for method in ("get", "post"):
            response = getattr(client, method)(f"/v1/unsubscribe/{link}")
            assert response.status_code == 410 and response.json["error"]["code"] == "link_expired"
    assert marketing_consent(person).granted is True and link_withdrawals() == 0
