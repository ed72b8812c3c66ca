"""Operators' routes (``/v1/admin``): policies, guardian consent, a user's
consents, statistics, staff and the audit log, and what staff answering a
privacy request need: finding a user, the user's record and ledger, minors
awaiting a guardian, export and erasure."""
from flask import Response, stream_with_context
from flask_jwt_extended import current_user
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from peewee import IntegrityError

import consent
from auth import audit, staff
from blueprints.base import ApiBlueprint, FullMatch, PageArgs, StrictSchema, UtcDateTime, page_schema
from blueprints.consents import ConsentOverviewSchema, LedgerEntrySchema, PolicySchema, change_context
from blueprints.me import EXPORT_FORMAT, ExportSchema, StoredDeviceSchema
from consent import catalogue
from core.errors import Conflict, NotFound
from models.account import ACCOUNT, STAFF_ROLES, User
from push import campaigns
from rights import records, stats

blp = ApiBlueprint("admin", __name__, url_prefix="/v1/admin", description="Operators")


class PolicyCreateSchema(StrictSchema):
    version = fields.String(required=True, validate=[
        validate.Length(min=1, max=32), FullMatch(r"^[A-Za-z0-9._-]+$", error="Letters, digits, . _ - only.")])
    text = fields.String(required=True, validate=validate.Length(min=1, max=200_000))
    changed_permissions = fields.List(
        fields.String(validate=validate.OneOf(catalogue.KEYS, error="Unknown permission.")),
        required=True, validate=validate.Length(max=len(catalogue.KEYS)))
    notify = fields.Boolean(load_default=False, metadata={
        "description": "Send a service notification about the new version to users with service_push"})


class GuardianConsentSchema(StrictSchema):
    id = fields.UUID(dump_only=True)
    user_id = fields.UUID(dump_only=True)
    guardian_name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    relationship = fields.String(required=True, validate=validate.Length(min=1, max=60))
    evidence_ref = fields.String(required=True, validate=validate.Length(min=1, max=200), metadata={
        "description": "Where the signed consent is filed, e.g. a document number"})
    recorded_at = UtcDateTime(dump_only=True)


class UserConsentsSchema(ConsentOverviewSchema):
    user_id = fields.UUID()


def _user(user_id):
    user = User.get_or_none((User.id == user_id) & (User.kind == ACCOUNT))
    if user is None:
        raise NotFound("No such user.")
    return user


@blp.route("/policies", methods=["POST"])
@blp.auth(roles=("privacy",))
@blp.arguments(PolicyCreateSchema)
@blp.response(201, PolicySchema)
@blp.alt_response(409, response="CONFLICT", description="Version already published")
def publish_policy(data):
    """Publish a policy version; grants of the permissions it lists as
    changed need the user's confirmation again."""
    try:
        policy = consent.publish_policy(data["version"], data["text"], data["changed_permissions"], current_user)
    except IntegrityError:
        raise Conflict("This version is already published.", code="version_exists",
                       details={"version": ["Already published."]}) from None
    if data["notify"]:
        campaigns.notify_policy(policy, current_user)
    return policy


@blp.route("/users/<uuid:user_id>/consents", methods=["GET"])
@blp.auth(roles=("privacy",))
@blp.response(200, UserConsentsSchema)
def user_consents(user_id):
    """A user's consents and whether each is in effect, for the site's other services."""
    user = _user(user_id)
    return {"user_id": user.id, **consent.staff_overview(user, current_user)}


@blp.route("/users/<uuid:user_id>/guardian-consent", methods=["POST"])
@blp.auth(roles=("privacy",))
@blp.arguments(GuardianConsentSchema)
@blp.response(201, GuardianConsentSchema)
def record_guardian_consent(data, user_id):
    """Record a parent's or guardian's written consent for a minor (policy section 7)."""
    user = _user(user_id)
    record = consent.record_guardian_consent(
        user, data["guardian_name"], data["relationship"], data["evidence_ref"], current_user,
        change_context("guardian"),
    )
    return {**record.__data__, "user_id": user.id}


@blp.route("/users/<uuid:user_id>/guardian-consent", methods=["DELETE"])
@blp.auth(roles=("privacy",))
@blp.response(204)
def revoke_guardian_consent(user_id):
    """Withdraw the guardian's consent: what depended on it stops, with effect."""
    user = _user(user_id)
    if not consent.revoke_guardian_consent(user, change_context("guardian"), current_user):
        raise NotFound("No guardian consent is on record.")


class DeviceStatsArgs(StrictSchema):
    by = fields.String(required=True, validate=validate.OneOf(stats.DIMENSIONS))


class GroupSchema(Schema):
    value = fields.String(allow_none=True)
    count = fields.Integer(metadata={"description": "Devices; the group has at least STATS_MIN_GROUP_SIZE users"})


class DeviceStatsSchema(Schema):
    by = fields.String()
    groups = fields.List(fields.Nested(GroupSchema))
    suppressed = fields.Integer(metadata={"description": "Devices in groups of fewer than STATS_MIN_GROUP_SIZE users"})


class ConsentTallySchema(Schema):
    granted = fields.Integer()
    withdrawn = fields.Integer()
    not_asked = fields.Integer()


class ConsentStatsSchema(Schema):
    users = fields.Integer()
    permissions = fields.Dict(keys=fields.String(), values=fields.Nested(ConsentTallySchema))


@blp.route("/stats/devices", methods=["GET"])
@blp.auth(roles=("campaigns", "privacy"))
@blp.arguments(DeviceStatsArgs, location="query")
@blp.response(200, DeviceStatsSchema)
def device_stats(args):
    """Devices by one characteristic, counting only users with
    usage_statistics and device_info in effect; small groups suppressed."""
    return stats.device_counts(args["by"])


@blp.route("/stats/consents", methods=["GET"])
@blp.auth(roles=("campaigns", "privacy"))
@blp.response(200, ConsentStatsSchema)
def consent_stats():
    """Per permission: granted, withdrawn, not asked."""
    return stats.consent_counts()


# -- privacy requests (policy section 5) ---------------------------------------------

SEARCH_FIELDS = ("email", "phone", "id")


class UserSearchArgs(StrictSchema):
    email = fields.String(validate=validate.Length(min=1, max=254), metadata={
        "description": "Matched as normalized (case and surrounding spaces ignored)"})
    phone = fields.String(validate=validate.Length(min=1, max=40), metadata={
        "description": "Matched on its digits and leading +, as registration stores it"})
    id = fields.UUID()

    @validates_schema
    def exactly_one(self, data, **kwargs):
        given = [name for name in SEARCH_FIELDS if name in data]
        if len(given) != 1:
            message = ["Give exactly one of email, phone or id."]
            raise ValidationError({name: message for name in (given or SEARCH_FIELDS)})


class UserSummarySchema(Schema):
    id = fields.UUID()
    email = fields.String()
    phone = fields.String(allow_none=True)
    birth_date = fields.Date(allow_none=True)
    role = fields.String()
    created_at = UtcDateTime()


class UserSearchSchema(Schema):
    items = fields.List(fields.Nested(UserSummarySchema), required=True, metadata={
        "description": f"At most {records.SEARCH_LIMIT}; a phone number may be shared"})


class GuardianRecordSchema(Schema):
    id = fields.UUID()
    guardian_name = fields.String()
    relationship = fields.String()
    evidence_ref = fields.String()
    recorded_at = UtcDateTime()
    revoked_at = UtcDateTime(allow_none=True)


class ChainStatusSchema(Schema):
    ok = fields.Boolean(metadata={"description": "The user's ledger chain recomputes and matches the consent table"})
    entries = fields.Integer(metadata={"description": "Entries verified"})
    failure = fields.String(allow_none=True, metadata={"description": "The first entry that does not verify, and why"})


class UserRecordSchema(Schema):
    user = fields.Nested(UserSummarySchema)
    consents = fields.Nested(ConsentOverviewSchema)
    guardian_consents = fields.List(fields.Nested(GuardianRecordSchema), metadata={
        "description": "Newest first; revoked ones included"})
    devices = fields.List(fields.Nested(StoredDeviceSchema), metadata={"description": "As stored (as the export shows)"})
    chain = fields.Nested(ChainStatusSchema)


class UserLedgerSchema(page_schema(LedgerEntrySchema, "UserLedgerPage")):
    chain = fields.Nested(ChainStatusSchema, required=True)


class AwaitingMinorSchema(Schema):
    id = fields.UUID()
    email = fields.String()
    birth_date = fields.Date()
    created_at = UtcDateTime()
    waiting = fields.List(fields.String(), metadata={
        "description": "Permissions the minor granted that wait for a guardian's consent"})


class UuidCursor(fields.UUID):
    """The page cursor of a list ordered by user id."""


AwaitingMinorPageSchema = page_schema(AwaitingMinorSchema, "AwaitingMinorPage", cursor=UuidCursor)


class AwaitingMinorArgs(PageArgs):
    cursor = UuidCursor(load_default=None)


class ErasureSchema(StrictSchema):
    confirm = fields.String(required=True, validate=validate.Length(min=1, max=254), metadata={
        "description": "The user's email or id, typed by the operator"})


@blp.route("/users", methods=["GET"])
@blp.auth(roles=("privacy",))
@blp.arguments(UserSearchArgs, location="query")
@blp.response(200, UserSearchSchema)
def find_users(args):
    """Find users by exactly one of email, phone number or id."""
    return {"items": records.find_users(args.get("email"), args.get("phone"), args.get("id"))}


@blp.route("/users/<uuid:user_id>", methods=["GET"])
@blp.auth(roles=("privacy",))
@blp.response(200, UserRecordSchema)
def user_record(user_id):
    """A user's record: profile, consents with the reason each is not in
    effect, guardian consents, devices as stored, and whether the user's
    ledger chain verifies. The ledger itself is paged at ``/ledger``."""
    return records.user_record(records.get_user(user_id), current_user)


@blp.route("/users/<uuid:user_id>/ledger", methods=["GET"])
@blp.auth(roles=("privacy",))
@blp.arguments(PageArgs, location="query")
@blp.response(200, UserLedgerSchema)
def user_ledger(args, user_id):
    """The user's ledger entries, newest first, with the chain's verification status."""
    return records.ledger_page(records.get_user(user_id), current_user, args["cursor"], args["limit"])


@blp.route("/users/<uuid:user_id>/export", methods=["GET"])
@blp.auth(roles=("privacy",))
@blp.doc(description=EXPORT_FORMAT)
@blp.response(200, ExportSchema, description="Everything held about the user (streamed JSON), as the user's own export")
def export_user(user_id):
    """Everything held about the user, on the user's request (streamed)."""
    user = records.get_user(user_id)
    response = Response(stream_with_context(records.export_on_request(user, current_user)),
                        mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="user-{user.id}.json"'
    return response


@blp.route("/users/<uuid:user_id>", methods=["DELETE"])
@blp.auth(roles=("privacy",))
@blp.arguments(ErasureSchema)
@blp.response(204)
@blp.alt_response(409, response="CONFLICT", description="A staff account (staff management removes those)")
def erase_user(data, user_id):
    """Erase the user on their request; ``confirm`` must be the user's email or id."""
    records.erase_on_request(records.get_user(user_id), current_user, data["confirm"])


@blp.route("/minors-awaiting-guardian", methods=["GET"])
@blp.auth(roles=("privacy",))
@blp.arguments(AwaitingMinorArgs, location="query")
@blp.response(200, AwaitingMinorPageSchema)
def minors_awaiting_guardian(args):
    """Minors without a guardian's consent on record, with the permissions
    they granted that wait for it (policy section 7)."""
    return records.minors_awaiting_guardian(args["cursor"], args["limit"])


# -- staff and the audit log (administrators only) ---------------------------------

class StaffSchema(Schema):
    id = fields.UUID()
    email = fields.String()
    role = fields.String(metadata={"description": "admin, campaigns or privacy"})
    created_at = UtcDateTime()


class StaffListSchema(Schema):
    staff = fields.List(fields.Nested(StaffSchema))


class StaffRoleSchema(StrictSchema):
    role = fields.String(required=True, validate=validate.OneOf(STAFF_ROLES))


class AuditEntrySchema(Schema):
    seq = fields.Integer(metadata={"description": "Position in the hash chain, 1 for the first entry"})
    actor_id = fields.UUID(allow_none=True, metadata={"description": "null: the system (e.g. create-admin)"})
    actor_email = fields.String(allow_none=True, metadata={"description": "The staff member's address at the time"})
    actor_role = fields.String(allow_none=True)
    action = fields.String()
    target = fields.String(allow_none=True, metadata={"example": "campaign:0b6b1b7e-3f4a-4f7e-9a59-6f3c5d1f2a10"})
    details = fields.Function(audit.details_of, metadata={"type": "object"})
    request_id = fields.String(allow_none=True)
    created_at = UtcDateTime()
    prev_hash = fields.String()
    hash = fields.String()


class AuditArgs(StrictSchema):
    actor_id = fields.UUID(metadata={"description": "Only this staff member's actions"})
    action = fields.String(validate=validate.OneOf(audit.ACTIONS))
    target = fields.String(validate=validate.Length(min=1, max=120), metadata={"example": "user:0b6b1b7e-..."})
    before_seq = fields.Integer(validate=validate.Range(min=1, max=2**63 - 1), metadata={
        "description": "Entries older than this one: pass the previous page's next_before_seq"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEntrySchema), required=True)
    next_before_seq = fields.Integer(allow_none=True, metadata={
        "description": "Pass as `before_seq` for the next page; null at the end."})


@blp.route("/staff", methods=["GET"])
@blp.auth(roles=("admin",))
@blp.response(200, StaffListSchema)
def list_staff():
    """Staff accounts and their roles."""
    return {"staff": staff.list_staff()}


@blp.route("/staff/<uuid:staff_id>", methods=["PATCH"])
@blp.auth(roles=("admin",))
@blp.arguments(StaffRoleSchema)
@blp.response(200, StaffSchema)
@blp.alt_response(404, response="NOT_FOUND", description="not_staff: no staff account has this id")
@blp.alt_response(409, response="CONFLICT", description="last_admin: the last administrator cannot be demoted")
def change_staff_role(data, staff_id):
    """Change a staff member's role; their sessions are revoked. Staff
    accounts are made with ``create-admin``, not here."""
    return staff.change_role(current_user, staff.staff_member(staff_id), data["role"])


@blp.route("/staff/<uuid:staff_id>", methods=["DELETE"])
@blp.auth(roles=("admin",))
@blp.response(204)
@blp.alt_response(404, response="NOT_FOUND", description="not_staff: no staff account has this id")
@blp.alt_response(409, response="CONFLICT", description="last_admin: the last administrator cannot be removed")
def remove_staff(staff_id):
    """Remove staff access: the account becomes a plain user and its sessions are revoked."""
    staff.remove(current_user, staff.staff_member(staff_id))


@blp.route("/audit", methods=["GET"])
@blp.auth(roles=("admin",))
@blp.arguments(AuditArgs, location="query")
@blp.response(200, AuditPageSchema)
def audit_log(args):
    """The audit log, newest first: every staff action with who, what,
    target, time and request id."""
    items, following = audit.page(actor=args.get("actor_id"), action=args.get("action"),
                                  target=args.get("target"), before_seq=args.get("before_seq"),
                                  limit=args["limit"])
    return {"items": items, "next_before_seq": following}
