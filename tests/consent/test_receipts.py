"""Consent receipts (issue 17, section 3): signed after the Kantara Consent
Receipt Specification v1.1, verified here with joserfc, a JOSE library the
app does not sign with, against the key set the app publishes."""
import base64
import hashlib
import json
from datetime import datetime

import pytest
from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

from consent import catalogue
from consent.ledger import _entry_hash
from models import User
from models.consent import LedgerEntry
from tests.consent_helpers import new_user

# RFC 9864 deprecates "EdDSA" for the fully specified "Ed25519", which PyJWT
# cannot sign with yet; the signature algorithm is the same.
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")


def change(client, headers, **consents):
    response = client.put("/v1/me/consents", json={"consents": consents}, headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def fetch(client, headers, receipt_id):
    response = client.get(f"/v1/me/consent-receipts/{receipt_id}", headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def published_keys(client):
    return KeySet.import_key_set(client.get("/v1/consent-receipts/keys").json)


def verified_payload(client, token):
    """The payload of ``token`` once joserfc has checked its signature."""
    return json.loads(jws.deserialize_compact(token, published_keys(client), algorithms=["EdDSA"]).payload)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_receipt_verifies_with_the_published_key_set(client, user):
    receipt_id = change(client, user["headers"], location=True)["receipts"][0]
    receipt = fetch(client, user["headers"], receipt_id)
    payload = verified_payload(client, receipt["jws"])
    assert payload == receipt["receipt"]
    assert payload["consentReceiptID"] == receipt_id == receipt["receipt_id"]
    assert payload["version"] == "KI-CR-v1.1.0"
    assert {"jurisdiction", "consentTimestamp", "collectionMethod", "language", "piiPrincipalId", "piiControllers",
            "policyUrl", "policyVersion", "services", "sensitive", "spiCat"} <= set(payload)
    purpose = payload["services"][0]["purposes"][0]
    assert purpose["purpose"] == catalogue.get("location").description
    assert payload["sensitive"] is True and payload["spiCat"] == ["Location"]


def flip_granted(raw):
    at = raw.index(b'"granted":false') + len(b'"granted":')
    raw[at:at + 5] = b"true "  # the JSON stays valid


def change_one_hash_byte(raw):
    at = raw.index(b'"hash":"') + len(b'"hash":"')
    raw[at] = ord("1") if raw[at] != ord("1") else ord("2")


@pytest.mark.parametrize("edit", [flip_granted, change_one_hash_byte])
def test_an_edited_receipt_fails_verification(client, user, edit):
    receipt_id = change(client, user["headers"], location=False)["receipts"][0]
    token = fetch(client, user["headers"], receipt_id)["jws"]
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    original = bytes(raw)
    edit(raw)
    assert json.loads(raw) != json.loads(original)
    edited = f"{header}.{b64url(bytes(raw))}.{signature}"
    with pytest.raises(BadSignatureError):
        jws.deserialize_compact(edited, published_keys(client), algorithms=["EdDSA"])
    verified_payload(client, token)  # the unedited one still verifies


def test_the_receipt_carries_the_ledger_rows_hash_and_the_subjects_pseudonym(app, client, user):
    receipt_id = change(client, user["headers"], device_info=True, usage_statistics=True)["receipts"][1]
    payload = verified_payload(client, fetch(client, user["headers"], receipt_id)["jws"])
    with app.app_context():
        account = User.get_by_id(user["user"]["id"])
        row = LedgerEntry.get((LedgerEntry.user == account) & (LedgerEntry.permission == "usage_statistics"))
        first = LedgerEntry.get((LedgerEntry.user == account) & (LedgerEntry.permission == "device_info"))
    assert payload["ledgerEntry"]["hash"] == row.hash == receipt_id
    assert payload["ledgerEntry"]["prevHash"] == row.prev_hash == first.hash
    assert payload["piiPrincipalId"] == str(account.ledger_subject)
    assert user["user"]["email"] not in json.dumps(payload)
    entry = payload["ledgerEntry"]
    # what the receipt says is enough to recompute the ledger's hash
    created_at = datetime.fromisoformat(entry["createdAt"].removesuffix("Z"))
    assert _entry_hash(payload["piiPrincipalId"], entry["seq"], entry["permission"], entry["granted"],
                       payload["policyVersion"], entry["source"], entry["reason"], created_at, entry["piiDigest"],
                       entry["prevHash"]) == row.hash


def test_a_grant_and_its_withdrawal_have_receipts_that_chain(client, user):
    granted = change(client, user["headers"], partner_sharing=True)["receipts"]
    withdrawn = change(client, user["headers"], partner_sharing=False)["receipts"]
    assert len(granted) == len(withdrawn) == 1
    grant = verified_payload(client, fetch(client, user["headers"], granted[0])["jws"])
    withdrawal = verified_payload(client, fetch(client, user["headers"], withdrawn[0])["jws"])
    assert grant["ledgerEntry"]["granted"] is True and withdrawal["ledgerEntry"]["granted"] is False
    assert withdrawal["ledgerEntry"]["prevHash"] == grant["ledgerEntry"]["hash"]
    assert grant["services"][0]["purposes"][0]["thirdPartyDisclosure"] is True
    assert grant["sensitive"] is False and grant["spiCat"] == []


def test_a_change_that_changes_nothing_has_no_receipt(client, user):
    change(client, user["headers"], usage_statistics=True)
    assert change(client, user["headers"], usage_statistics=True)["receipts"] == []


def test_one_change_of_several_permissions_has_a_receipt_per_ledger_entry(app, client, user):
    ids = change(client, user["headers"], location=True, marketing_push=True, personalization=False)["receipts"]
    with app.app_context():
        hashes = [e.hash for e in LedgerEntry.select().where(LedgerEntry.user == user["user"]["id"])
                  .order_by(LedgerEntry.seq)]
    assert ids == hashes and len(ids) == 3


def test_a_receipt_stays_the_same_and_verifies_after_later_changes(client, user):
    receipt_id = change(client, user["headers"], location=True)["receipts"][0]
    before = fetch(client, user["headers"], receipt_id)["jws"]
    change(client, user["headers"], location=False, device_info=True)
    change(client, user["headers"], location=True)
    after = fetch(client, user["headers"], receipt_id)["jws"]
    assert after == before
    assert verified_payload(client, before)["ledgerEntry"]["granted"] is True


def test_another_users_receipt_answers_404(client, user):
    receipt_id = change(client, user["headers"], location=True)["receipts"][0]
    other = new_user(client)
    response = client.get(f"/v1/me/consent-receipts/{receipt_id}", headers=other["headers"])
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    for unknown in ("0" * 64, "not-a-receipt", receipt_id.upper()):
        assert client.get(f"/v1/me/consent-receipts/{unknown}", headers=user["headers"]).status_code == 404


def test_the_export_contains_every_receipt(client, user):
    ids = change(client, user["headers"], location=True, device_info=True)["receipts"]
    ids += change(client, user["headers"], location=False)["receipts"]
    exported = client.get("/v1/me/export", headers=user["headers"]).json["consent_receipts"]
    assert [r["receipt_id"] for r in exported] == ids
    for receipt in exported:
        assert verified_payload(client, receipt["jws"]) == receipt["receipt"]


def test_the_key_set_is_one_public_ed25519_key_named_by_its_thumbprint(client):
    response = client.get("/v1/consent-receipts/keys")  # no token
    assert response.status_code == 200
    assert response.headers["Cache-Control"].startswith("public")
    (key,) = response.json["keys"]
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert "d" not in key
    members = json.dumps({"crv": key["crv"], "kty": key["kty"], "x": key["x"]}, separators=(",", ":"))
    assert key["kid"] == b64url(hashlib.sha256(members.encode()).digest())  # RFC 7638
    assert key["kid"] == KeySet.import_key_set(response.json).keys[0].thumbprint()


def test_the_jws_header_names_the_published_key(client, user):
    receipt_id = change(client, user["headers"], location=True)["receipts"][0]
    token = fetch(client, user["headers"], receipt_id)["jws"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "EdDSA"
    assert header["kid"] == client.get("/v1/consent-receipts/keys").json["keys"][0]["kid"]


def test_after_erasure_a_kept_receipt_still_verifies_and_names_only_the_pseudonym(app, client, user):
    receipt_id = change(client, user["headers"], location=True)["receipts"][0]
    kept = fetch(client, user["headers"], receipt_id)["jws"]
    with app.app_context():
        subject = User.get_by_id(user["user"]["id"]).ledger_subject
    assert client.delete("/v1/me", headers=user["headers"]).status_code == 204
    assert client.get(f"/v1/me/consent-receipts/{receipt_id}", headers=user["headers"]).status_code == 401
    payload = verified_payload(client, kept)
    with app.app_context():
        row = LedgerEntry.get(LedgerEntry.hash == receipt_id)
    assert (row.user_id, row.ip, row.device_id, row.user_agent) == (None, None, None, None)
    assert row.subject == subject and str(subject) == payload["piiPrincipalId"]
    assert payload["ledgerEntry"]["hash"] == row.hash
