"""Push campaigns and service notifications (operators), and the one-click
unsubscribe link that travels in every marketing push."""
from flask import current_app, request
from flask_jwt_extended import current_user
from marshmallow import Schema, fields, validate, validates_schema

from blueprints.base import ApiBlueprint, StrictSchema, UtcDateTime
from consent.ledger import ChangeContext
from core.errors import NotFound
from core.extensions import limiter
from models.account import User
from models.push import Campaign
from push import campaigns
from push.schemas import AudienceSchema, CampaignCreateSchema, check_push_data, push_data_field
from push import unsubscribe as links

blp = ApiBlueprint("push", __name__, url_prefix="/v1", description="Push campaigns and notifications")

class CountersSchema(Schema):
    targeted = fields.Integer()
    sent = fields.Integer()
    failed = fields.Integer()
    skipped = fields.Integer()
    invalid_tokens = fields.Integer()
    unknown = fields.Integer(metadata={"description": "Claimed by a worker that died: maybe sent, never resent"})
    pending = fields.Integer()


class CampaignSchema(Schema):
    id = fields.UUID()
    name = fields.String()
    kind = fields.String()
    target = fields.String(metadata={"description": "user (a notification to one user) or audience"})
    target_user_id = fields.UUID(allow_none=True, metadata={"description": "The user of a one-user notification"})
    title = fields.String()
    body = fields.String()
    data = fields.Dict(keys=fields.String(), values=fields.String())
    audience = fields.Nested(AudienceSchema, metadata={"description": "The filters set; {} for everyone"})
    status = fields.String(metadata={"description": "draft, scheduled, sending, paused, completed or cancelled"})
    paused_reason = fields.String(allow_none=True)
    send_at = UtcDateTime(allow_none=True)
    created_at = UtcDateTime()
    started_at = UtcDateTime(allow_none=True)
    finished_at = UtcDateTime(allow_none=True)
    counters = fields.Nested(CountersSchema)

    def get_attribute(self, obj, attr, default):
        if attr == "counters":
            return campaigns.status(obj)
        return super().get_attribute(obj, attr, default)


class CampaignListSchema(Schema):
    campaigns = fields.List(fields.Nested(CampaignSchema))


class CampaignListArgs(StrictSchema):
    kind = fields.String(validate=validate.OneOf(Campaign.KINDS))
    status = fields.String(validate=validate.OneOf(Campaign.STATUSES))
    target = fields.String(validate=validate.OneOf(Campaign.TARGETS), metadata={
        "description": "user: notifications to one user (POST /v1/notifications); audience: campaigns"})


class AudiencePreviewSchema(Schema):
    eligible = fields.Integer()
    excluded = fields.Dict(keys=fields.String(), values=fields.Integer(),
                           metadata={"description": "reason -> devices, e.g. marketing_push:not_asked"})


class NotificationSchema(StrictSchema):
    user_id = fields.UUID(required=True)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    body = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    data = push_data_field()

    @validates_schema
    def data_limits(self, data, **kwargs):
        check_push_data(data.get("data"))


class NotificationResultSchema(Schema):
    campaign_id = fields.UUID()
    reached = fields.Integer(metadata={"description": "Devices the push service accepted it for"})
    pending = fields.Integer(metadata={"description": "Devices being retried"})
    skipped = fields.Dict(keys=fields.String(), values=fields.Integer())


class UnsubscribeInfoSchema(Schema):
    permission = fields.String()
    effect = fields.String()
    method = fields.String()


class UnsubscribeResultSchema(Schema):
    unsubscribed = fields.Boolean()
    permission = fields.String()


def _campaign(campaign_id):
    campaign = Campaign.get_or_none(Campaign.id == campaign_id)
    if campaign is None:
        raise NotFound("No such campaign.")
    return campaign


@blp.route("/admin/campaigns", methods=["POST"])
@blp.auth(roles=("campaigns",))
@blp.arguments(CampaignCreateSchema)
@blp.response(201, CampaignSchema)
def create_campaign(data):
    """Create a draft campaign."""
    return campaigns.create(data, current_user)


@blp.route("/admin/campaigns", methods=["GET"])
@blp.auth(roles=("campaigns",))
@blp.arguments(CampaignListArgs, location="query")
@blp.response(200, CampaignListSchema)
def list_campaigns(args):
    """The 100 newest campaigns, notifications to one user included."""
    return {"campaigns": list(Campaign.newest(**args))}


@blp.route("/admin/campaigns/<uuid:campaign_id>", methods=["GET"])
@blp.auth(roles=("campaigns",))
@blp.response(200, CampaignSchema)
def get_campaign(campaign_id):
    """Status and counters."""
    return _campaign(campaign_id)


@blp.route("/admin/campaigns/<uuid:campaign_id>/audience", methods=["GET"])
@blp.auth(roles=("campaigns",))
@blp.response(200, AudiencePreviewSchema)
def campaign_audience(campaign_id):
    """How many devices the campaign would reach now, and why others not."""
    return campaigns.preview(_campaign(campaign_id))


@blp.route("/admin/campaigns/<uuid:campaign_id>/send", methods=["POST"])
@blp.auth(roles=("campaigns",))
@blp.response(202, CampaignSchema)
@blp.alt_response(409, response="CONFLICT", description="Not a draft")
def send_campaign(campaign_id):
    """Send now, or at ``send_at``."""
    campaign = _campaign(campaign_id)
    campaigns.send(campaign, current_user)
    return Campaign.get_by_id(campaign.id)


@blp.route("/admin/campaigns/<uuid:campaign_id>/cancel", methods=["POST"])
@blp.auth(roles=("campaigns",))
@blp.response(200, CampaignSchema)
@blp.alt_response(409, response="CONFLICT", description="Already finished")
def cancel_campaign(campaign_id):
    """Stop what has not been sent."""
    campaign = _campaign(campaign_id)
    campaigns.cancel(campaign, current_user)
    return Campaign.get_by_id(campaign.id)


@blp.route("/admin/campaigns/<uuid:campaign_id>/resume", methods=["POST"])
@blp.auth(roles=("campaigns",))
@blp.response(202, CampaignSchema)
@blp.alt_response(409, response="CONFLICT", description="Not paused")
def resume_campaign(campaign_id):
    """Continue a paused campaign (e.g. after fixing the FCM credentials)."""
    campaign = _campaign(campaign_id)
    campaigns.resume(campaign, current_user)
    return Campaign.get_by_id(campaign.id)


@blp.route("/notifications", methods=["POST"])
@blp.auth(roles=("campaigns",))
@blp.arguments(NotificationSchema)
@blp.response(200, NotificationResultSchema)
@blp.alt_response(503, response="SERVICE_UNAVAILABLE", description="The push provider cannot send; paused")
def notify(data):
    """A service notification to one user's devices (orders, delivery,
    account security); needs the user's service_push."""
    user = User.get_or_none(User.id == data["user_id"])
    if user is None:
        raise NotFound("No such user.")
    campaign = campaigns.notify_user(user, data["title"], data["body"], data["data"], current_user)
    return campaigns.notification_summary(campaign, user)


@blp.route("/unsubscribe/<token>", methods=["GET"])
@blp.response(200, UnsubscribeInfoSchema)
@blp.alt_response(400, response="BAD_REQUEST", description="Forged or damaged link, or its user erased")
@blp.alt_response(410, response="GONE", description="Expired, or a later grant replaced the one it was sent under")
def describe_unsubscribe(token):
    """What POSTing this link does; changes nothing."""
    links.describe_unsubscribe(token)
    return {"permission": "marketing_push", "method": "POST",
            "effect": "Stops product and promotion notifications. Service notifications are not affected."}


@blp.route("/unsubscribe/<token>", methods=["POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_UNSUBSCRIBE"])
@blp.response(200, UnsubscribeResultSchema)
@blp.alt_response(400, response="BAD_REQUEST", description="Forged or damaged link, or its user erased")
@blp.alt_response(410, response="GONE", description="Expired, or a later grant replaced the one it was sent under")
def unsubscribe(token):
    """One-click opt-out of marketing notifications; no login. Withdraws
    only the grant the push was sent under; a link expires after
    ``UNSUBSCRIBE_TOKEN_DAYS``."""
    links.unsubscribe(token, unsubscribe_context(request))
    return {"unsubscribed": True, "permission": "marketing_push"}


def unsubscribe_context(request):
    return ChangeContext(source="unsubscribe_link", ip=request.remote_addr,
                         user_agent=request.user_agent.string or None)
