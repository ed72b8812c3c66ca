"""The permission catalogue, the current policy and the user's consents."""
from flask import request
from flask_jwt_extended import current_user
from marshmallow import Schema, fields, validate

import consent
from blueprints.base import ApiBlueprint, PageArgs, StrictBoolean, StrictSchema, UtcDateTime, newest_first, page_schema
from blueprints.devices import DeviceMismatchesSchema
from consent import catalogue, receipts
from consent.ledger import ChangeContext
from core.errors import NotFound, ValidationFailed
from core.openapi import OPTIONAL
from models.consent import LedgerEntry, PolicyVersion
from models.device import Device

blp = ApiBlueprint("consents", __name__, url_prefix="/v1", description="Permissions, policy and consent")


class PermissionSchema(Schema):
    key = fields.String()
    title = fields.String()
    description = fields.String()
    policy_section = fields.String(metadata={"description": "Section of the privacy policy"})
    requires = fields.List(fields.String())
    sensitive = fields.Boolean()
    minors_allowed = fields.Boolean()
    guardian_required = fields.Boolean(metadata={"description": "A minor needs a guardian's written consent"})


class PermissionListSchema(Schema):
    permissions = fields.List(fields.Nested(PermissionSchema))


class PolicySchema(Schema):
    version = fields.String()
    published_at = UtcDateTime()
    changed_permissions = fields.List(fields.String(), metadata={
        "description": "The permissions this version changed (to be asked again)"})
    text = fields.String()

    def get_attribute(self, obj, attr, default):
        if attr == "changed_permissions":
            return obj.changed_permissions()
        return super().get_attribute(obj, attr, default)


class ConsentStatusSchema(Schema):
    granted = fields.Boolean(metadata={"description": "The user's own choice"})
    effective = fields.Boolean(metadata={"description": "Whether the permission is in effect now"})
    reason = fields.String(allow_none=True, metadata={
        "description": "Why not in effect: not_asked, withdrawn, stale_policy, guardian_required, "
                       "not_for_minors, reconfirm (granted while a rule refused it: grant again), "
                       "requires:<key>"})
    policy_version = fields.String(allow_none=True, metadata={"description": "Version the choice was made under"})
    updated_at = UtcDateTime(allow_none=True)


class ConsentOverviewSchema(Schema):
    policy_version = fields.String(allow_none=True, metadata={"description": "The current policy version"})
    minor = fields.Boolean()
    guardian_consent = fields.Boolean()
    consents = fields.Dict(keys=fields.String(), values=fields.Nested(ConsentStatusSchema))
    devices = fields.List(fields.Nested(DeviceMismatchesSchema), metadata={
        "description": "Per device, the permissions in effect that the phone's own permissions narrow there "
                       "(os_permissions), so the app can tell the user; an empty list where none do"})


class ConsentChangeSchema(ConsentOverviewSchema):
    receipts = fields.List(fields.String(), metadata={
        "description": "Ids of the consent receipts of this change, one per ledger entry it wrote, in that order "
                       "(GET /v1/me/consent-receipts/{receipt_id}); empty when nothing changed"})


class ConsentUpdateSchema(StrictSchema):
    consents = fields.Dict(
        keys=fields.String(validate=validate.OneOf(catalogue.KEYS, error="Unknown permission.")),
        values=StrictBoolean(),
        required=True,
        validate=validate.Length(min=1, max=len(catalogue.KEYS)),
    )
    device_id = fields.UUID(load_default=None, allow_none=True)
    source = fields.String(load_default="app", validate=validate.OneOf(consent.USER_SOURCES))


class LedgerEntrySchema(Schema):
    id = fields.Integer()
    permission = fields.String()
    granted = fields.Boolean()
    policy_version = fields.String()
    source = fields.String()
    reason = fields.String(allow_none=True)
    device_id = fields.UUID(allow_none=True)
    ip = fields.String(allow_none=True, metadata={"description": "Truncated to /24 (IPv4) or /48 (IPv6)"})
    user_agent = fields.String(allow_none=True)
    created_at = UtcDateTime()
    hash = fields.String()
    prev_hash = fields.String()
    adopted_from = fields.String(allow_none=True, metadata={
        "description": "Source installation: the hash of the installation's entry this one adopted at sign-in"})


LedgerPageSchema = page_schema(LedgerEntrySchema, "LedgerPage")


class ReceiptControllerSchema(Schema):
    piiController = fields.String(metadata={"description": "RECEIPT_CONTROLLER_NAME"})
    contact = fields.String()
    address = fields.String()
    email = fields.String()
    phone = fields.String()


class ReceiptPurposeSchema(Schema):
    purpose = fields.String(metadata={"description": "The permission's description in the catalogue"})
    purposeCategory = fields.List(fields.String())
    consentType = fields.String(metadata={"description": "EXPLICIT: nothing is pre-ticked or inferred"})
    piiCategory = fields.List(fields.String())
    primaryPurpose = fields.Boolean()
    termination = fields.String()
    thirdPartyDisclosure = fields.Boolean()
    thirdPartyName = fields.String(metadata={OPTIONAL: True, "description": "Only where thirdPartyDisclosure"})


class ReceiptServiceSchema(Schema):
    service = fields.String(metadata={"description": "The permission's title"})
    purposes = fields.List(fields.Nested(ReceiptPurposeSchema))


class ReceiptLedgerEntrySchema(Schema):
    seq = fields.Integer()
    permission = fields.String()
    granted = fields.Boolean(metadata={"description": "false for a withdrawal"})
    reason = fields.String(allow_none=True)
    source = fields.String()
    createdAt = fields.String(metadata={"description": "UTC, microseconds, as hashed"})
    piiDigest = fields.String(metadata={"description": "Salted digest of the device, truncated IP and user agent"})
    prevHash = fields.String()
    hash = fields.String()
    adoptedFrom = fields.String(metadata={
        OPTIONAL: True, "description": "Only on a choice adopted from an installation at sign-in: the hash of its entry"})


class ReceiptClaimsSchema(Schema):
    """After the Kantara Initiative Consent Receipt Specification v1.1."""

    version = fields.String()
    jurisdiction = fields.String()
    consentTimestamp = fields.Integer(metadata={"description": "Seconds since the epoch"})
    collectionMethod = fields.String()
    consentReceiptID = fields.String(metadata={"description": "The ledger entry's hash"})
    language = fields.String()
    piiPrincipalId = fields.String(metadata={"description": "The ledger's pseudonym of the subject"})
    piiControllers = fields.List(fields.Nested(ReceiptControllerSchema))
    policyUrl = fields.String()
    policyVersion = fields.String()
    services = fields.List(fields.Nested(ReceiptServiceSchema))
    sensitive = fields.Boolean()
    spiCat = fields.List(fields.String())
    ledgerEntry = fields.Nested(ReceiptLedgerEntrySchema)


class ReceiptSchema(Schema):
    receipt_id = fields.String(metadata={"description": "The hash of the ledger entry the receipt attests"})
    jws = fields.String(metadata={
        "description": "The receipt signed as a compact JWS (EdDSA, Ed25519); verify it with "
                       "GET /v1/consent-receipts/keys"})
    receipt = fields.Nested(ReceiptClaimsSchema, metadata={"description": "The JWS's payload, for display"})


class JwkSchema(Schema):
    kty = fields.String(metadata={"description": "OKP"})
    crv = fields.String(metadata={"description": "Ed25519"})
    x = fields.String(metadata={"description": "The public key, base64url"})
    kid = fields.String(metadata={"description": "RFC 7638 thumbprint of the key; the JWS header's kid"})
    use = fields.String()
    alg = fields.String()


class JwksSchema(Schema):
    keys = fields.List(fields.Nested(JwkSchema))


def change_context(source, device_id=None):
    return ChangeContext(
        source=source,
        device_id=device_id,
        ip=request.remote_addr,
        user_agent=request.user_agent.string or None,
    )


@blp.route("/permissions", methods=["GET"])
@blp.response(200, PermissionListSchema)
def list_permissions():
    """The permission catalogue (public)."""
    return {"permissions": catalogue.PERMISSIONS}


@blp.route("/policy", methods=["GET"])
@blp.response(200, PolicySchema)
def current_policy():
    """The current privacy policy version (public)."""
    policy = PolicyVersion.current()
    if policy is None:
        raise NotFound("No policy has been published.")
    return policy


# One view body per operation, for an account's token (/me) and an
# installation's (/installation) alike: the consent engine decides for the
# subject the token stands for.
BOTH = ("account", "installation")


def _overview():
    return consent.overview(current_user)


def _update(data):
    if data["device_id"] is not None and Device.owned(current_user, data["device_id"]) is None:
        raise ValidationFailed({"device_id": ["Not one of your devices."]})
    return consent.set_consents(current_user, data["consents"], change_context(data["source"], data["device_id"]))


def _history(args):
    return newest_first(LedgerEntry.select().where(LedgerEntry.user == current_user.id), LedgerEntry.id, args)


def _receipt(receipt_id):
    found = receipts.find(current_user.ledger_subject, receipt_id)
    if found is None:
        raise NotFound("No such consent receipt.")
    return found


@blp.route("/me/consents", methods=["GET"])
@blp.auth()
@blp.response(200, ConsentOverviewSchema)
def my_consents():
    """Each permission: the user's choice, whether it is in effect and why not."""
    return _overview()


@blp.route("/me/consents", methods=["PUT"])
@blp.auth()
@blp.arguments(ConsentUpdateSchema)
@blp.response(200, ConsentChangeSchema)
def update_my_consents(data):
    """Grant or withdraw several permissions in one transaction, all or
    nothing; each change has a signed consent receipt."""
    return _update(data)


@blp.route("/me/consents/history", methods=["GET"])
@blp.auth()
@blp.arguments(PageArgs, location="query")
@blp.response(200, LedgerPageSchema)
def my_consent_history(args):
    """The user's ledger entries, newest first."""
    return _history(args)


@blp.route("/me/consent-receipts/<receipt_id>", methods=["GET"])
@blp.auth()
@blp.response(200, ReceiptSchema)
def my_consent_receipt(receipt_id):
    """One of the user's consent receipts, signed (404 for any id not of the user's own)."""
    return _receipt(receipt_id)


@blp.route("/installation/consents", methods=["GET"])
@blp.auth(subjects=("installation",))
@blp.response(200, ConsentOverviewSchema)
def installation_consents():
    """The installation's choices (the app before sign-in), as ``GET /v1/me/consents``."""
    return _overview()


@blp.route("/installation/consents", methods=["PUT"])
@blp.auth(subjects=("installation",))
@blp.arguments(ConsentUpdateSchema)
@blp.response(200, ConsentChangeSchema)
def update_installation_consents(data):
    """The consent screen's answers before sign-in, as ``PUT /v1/me/consents``:
    the same catalogue, rules, receipts and withdrawal effects, in the
    installation's own ledger chain."""
    return _update(data)


@blp.route("/installation/consents/history", methods=["GET"])
@blp.auth(subjects=("installation",))
@blp.arguments(PageArgs, location="query")
@blp.response(200, LedgerPageSchema)
def installation_consent_history(args):
    """The installation's ledger entries, newest first."""
    return _history(args)


@blp.route("/installation/consent-receipts/<receipt_id>", methods=["GET"])
@blp.auth(subjects=("installation",))
@blp.response(200, ReceiptSchema)
def installation_consent_receipt(receipt_id):
    """One of the installation's consent receipts, signed."""
    return _receipt(receipt_id)


@blp.route("/consent-receipts/keys", methods=["GET"])
@blp.response(200, JwksSchema)
def receipt_keys():
    """The public key that verifies consent receipts, as a JWKS (public, cacheable)."""
    return receipts.jwks()
