"""Installations: the app before sign-in (``/v1/installations``,
``/v1/installation``). Its consents are served by the consents blueprint,
its devices, push tokens and locations by the devices blueprint, with the
installation's token."""
from flask import Response, current_app, request, stream_with_context
from flask_jwt_extended import current_user
from marshmallow import Schema, fields, validate

from auth.sessions import installation_of, open_installation_session
from blueprints.base import ApiBlueprint, FullMatch, StrictSchema, UtcDateTime
from blueprints.me import EXPORT_FORMAT, ExportSchema
from consent import installations
from core.errors import Conflict
from core.extensions import limiter
from models import write_transaction
from models.device import PLATFORMS
from rights import erasure, export

blp = ApiBlueprint("installations", __name__, url_prefix="/v1", description="The app before sign-in")

INSTALLATION_ID = r"^[A-Za-z0-9_-]{8,128}$"


class InstallationCreateSchema(StrictSchema):
    installation_id = fields.String(required=True, validate=FullMatch(
        INSTALLATION_ID, error="8 to 128 characters of A-Z, a-z, 0-9, _ and -."))
    platform = fields.String(required=True, validate=validate.OneOf(PLATFORMS))
    app_version = fields.String(required=True, validate=[
        validate.Length(max=32), FullMatch(r"^\d+(\.\d+){0,3}$", error="Dotted numbers, e.g. 3.12.0.")])


class InstallationSchema(Schema):
    id = fields.UUID(required=True)
    installation_id = fields.String(required=True)
    created_at = UtcDateTime(required=True)


class InstallationProfileSchema(InstallationSchema):
    kind = fields.String(required=True, metadata={"description": "Always installation"})
    last_seen_at = UtcDateTime(allow_none=True, required=True)


class InstallationExportSchema(ExportSchema):
    """The export document of an installation: an account's sections, with
    the installation in place of the account's profile."""
    profile = fields.Nested(InstallationProfileSchema)


class InstallationCreatedSchema(Schema):
    installation = fields.Nested(InstallationSchema, required=True)
    installation_token = fields.String(required=True, metadata={
        "description": "Bearer token of the installation (no expiry, revocable); send it as "
                       "X-Installation-Token with login or registration to merge the installation"})


def _presented_installation():
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    return installation_of(header[len("Bearer "):].strip())


@blp.route("/installations", methods=["POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_INSTALLATION"])
@blp.arguments(InstallationCreateSchema)
@blp.response(201, InstallationCreatedSchema)
@blp.alt_response(200, schema=InstallationCreatedSchema, success=True,
                  description="The same installation, with its own token presented: a new token")
@blp.alt_response(409, response="CONFLICT", description="installation_exists: the id is taken")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def create_installation(data):
    """The app's first launch: an anonymous consent subject and its token.
    Nothing else is stored until it has consent: platform and app version
    are checked, not kept (the device registration stores them). An
    installation id is not a secret, so a taken one gets a new token only
    for a caller presenting that installation's token."""
    presented = _presented_installation()
    if presented is not None and presented.installation_id == data["installation_id"]:
        return {"installation": presented, "installation_token": open_installation_session(presented)}, 200
    with write_transaction():
        try:
            installation = installations.create(data["installation_id"])
        except installations.InstallationExists:
            raise Conflict("This installation id is taken; present its token to get a new one.",
                           code="installation_exists", details={"installation_id": ["Already registered."]}) from None
        token = open_installation_session(installation)
    return {"installation": installation, "installation_token": token}


@blp.route("/installation/export", methods=["GET"])
@blp.auth(subjects=("installation",))
@blp.doc(description=EXPORT_FORMAT)
@blp.response(200, InstallationExportSchema,
              description="Everything held about the installation (streamed JSON, as GET /v1/me/export)")
def export_installation():
    """Everything held about the installation before sign-in (streamed)."""
    installation = current_user._get_current_object()
    response = Response(stream_with_context(export.export(installation)), mimetype="application/json")
    response.headers["Content-Disposition"] = 'attachment; filename="my-data.json"'
    return response


@blp.route("/installation", methods=["DELETE"])
@blp.auth(subjects=("installation",))
@blp.response(204)
def delete_installation():
    """Erase the installation and everything held for it; its token stops working."""
    erasure.erase(current_user._get_current_object())
