"""Consent receipts: each ledger entry of a catalogue permission told after
the Kantara Initiative Consent Receipt Specification v1.1 and signed as a
compact JWS (EdDSA, Ed25519), so that the person, or a regulator, can check
it with the published key (``jwks``) and without us.

A receipt is rebuilt from its ledger entry whenever it is asked for: the
ledger stays the only record of consent, and Ed25519 signatures are
deterministic, so the same entry gives the same receipt, byte for byte, for
as long as the key, the catalogue and the controller settings stay as they
are. A receipt names its subject only by the ledger's pseudonym (never an
email, a device or an address); receipts are per subject, so a subject other
than a user can have them too."""
import base64
import hashlib
import json
import re
from datetime import timezone

import jwt
from cryptography.hazmat.primitives import serialization
from flask import current_app

from consent import catalogue
from models.consent import LedgerEntry

VERSION = "KI-CR-v1.1.0"
LANGUAGE = "en"  # the catalogue's texts are English
RECEIPT_ID = re.compile(r"[0-9a-f]{64}")
PAGE = 500
COLLECTION_METHODS = {
    "app": "The user's choice in the mobile app's privacy settings",
    "web": "The user's choice in the site's privacy settings",
    "unsubscribe_link": "The one-click unsubscribe link of a marketing notification",
    "admin": "Recorded by a member of staff",
    "guardian": "Recorded with a guardian's written consent",
    "system": "Recorded by the service when a rule or the policy stopped the consent",
    "installation": "The user's choice in the mobile app before sign-in, adopted by the account at sign-in",
}
TERMINATION = ("Until withdrawn: in the app's privacy settings (PUT /v1/me/consents) at any time, as easily as "
               "it was given, or by erasing the account. Withdrawal deletes or coarsens what the consent covered.")


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _private_key():
    return serialization.load_pem_private_key(current_app.config["RECEIPT_SIGNING_KEY"].encode(), password=None)


def public_jwk():
    """The signing key's public half as a JWK, ``kid`` its RFC 7638 thumbprint."""
    raw = _private_key().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}
    # RFC 7638: the required members only, in lexicographic order, no whitespace
    thumbprint = hashlib.sha256(json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()).digest()
    return {**jwk, "kid": _b64url(thumbprint), "use": "sig", "alg": "EdDSA"}


def jwks():
    """The key set that verifies every receipt (``GET /v1/consent-receipts/keys``)."""
    return {"keys": [public_jwk()]}


def receipt_id(entry):
    """A receipt is named by the hash of the ledger entry it attests:
    unique, kept by the ledger, and nothing to store besides."""
    return entry.hash


def _controllers(config):
    return [{
        "piiController": config["RECEIPT_CONTROLLER_NAME"],
        "contact": config["RECEIPT_CONTROLLER_CONTACT"],
        "address": config["RECEIPT_CONTROLLER_ADDRESS"],
        "email": config["RECEIPT_CONTROLLER_EMAIL"],
        "phone": config["RECEIPT_CONTROLLER_PHONE"],
    }]


def _purpose(permission):
    purpose = {
        "purpose": permission.description,
        "purposeCategory": list(permission.purpose_categories),
        # explicit always: nothing is pre-ticked or inferred (policy §1.2)
        "consentType": "EXPLICIT",
        "piiCategory": list(permission.pii_categories),
        "primaryPurpose": permission.primary_purpose,
        "termination": TERMINATION,
        "thirdPartyDisclosure": permission.third_party_disclosure,
    }
    if permission.third_party_disclosure:
        purpose["thirdPartyName"] = "The site's partners (policy §3.3)"
    return purpose


def claims(entry):
    """The receipt of one ledger entry, unsigned."""
    config = current_app.config
    permission = catalogue.get(entry.permission)
    created_at = entry.created_at.replace(tzinfo=timezone.utc)
    return {
        "version": VERSION,
        "jurisdiction": config["RECEIPT_JURISDICTION"],
        "consentTimestamp": int(created_at.timestamp()),
        "collectionMethod": COLLECTION_METHODS.get(entry.source, entry.source),
        "consentReceiptID": receipt_id(entry),
        "language": LANGUAGE,
        "piiPrincipalId": str(entry.subject),
        "piiControllers": _controllers(config),
        "policyUrl": config["RECEIPT_POLICY_URL"],
        "policyVersion": entry.policy_version,
        "services": [{"service": permission.title, "purposes": [_purpose(permission)]}],
        "sensitive": permission.sensitive,
        "spiCat": list(permission.pii_categories) if permission.sensitive else [],
        # What the ledger recorded, with enough of the entry to recompute its
        # hash (consent/ledger.py) and to find it in the chain.
        "ledgerEntry": {
            "seq": entry.seq,
            "permission": entry.permission,
            "granted": bool(entry.granted),
            "reason": entry.reason,
            "source": entry.source,
            "createdAt": entry.created_at.isoformat(timespec="microseconds") + "Z",
            "piiDigest": entry.pii_digest,
            "prevHash": entry.prev_hash,
            "hash": entry.hash,
            **({"adoptedFrom": entry.adopted_from} if entry.adopted_from else {}),
        },
    }


def sign(payload):
    return jwt.encode(payload, _private_key(), algorithm="EdDSA", headers={"kid": public_jwk()["kid"]})


def issue(entry):
    payload = claims(entry)
    return {"receipt_id": payload["consentReceiptID"], "jws": sign(payload), "receipt": payload}


def _entries(subject):
    return LedgerEntry.select().where(
        (LedgerEntry.subject == subject) & LedgerEntry.permission.in_(catalogue.KEYS))


def find(subject, wanted):
    """The receipt ``wanted`` of ``subject``'s chain, or None (another
    subject's receipt is None too: one cannot tell it exists)."""
    if not isinstance(wanted, str) or not RECEIPT_ID.fullmatch(wanted):
        return None
    entry = _entries(subject).where(LedgerEntry.hash == wanted).first()
    return None if entry is None else issue(entry)


def of_subject(subject):
    """Every receipt of ``subject``, oldest first, read a page at a time."""
    after = 0
    while True:
        entries = list(_entries(subject).where(LedgerEntry.seq > after).order_by(LedgerEntry.seq).limit(PAGE))
        if not entries:
            return
        for entry in entries:
            yield issue(entry)
        after = entries[-1].seq


def issued_for(entries):
    """Receipt ids of the entries a change wrote, in the order written."""
    return [receipt_id(entry) for entry in entries]
