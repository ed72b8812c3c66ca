"""Registration, login, token refresh and logout (``/v1/auth``)."""
from datetime import date

from flask import current_app, request
from flask_jwt_extended import current_user, get_jwt
from marshmallow import ValidationError, fields, post_load, validate, validates

from auth.login import authenticate, login_limits
from auth.passwords import hash_password
from auth.sessions import (
    DEVICE_CHARS, RefreshReused, close_session, installation_of, open_session, revoke_all_sessions, rotate_session)
from blueprints.base import BAD_TOKEN, ApiBlueprint, FullMatch, StrictSchema, UtcDateTime, unstorable
from consent import installations
from consent.ledger import ChangeContext
from core.errors import Conflict, Unauthorized
from core.extensions import limiter
from models import User, write_transaction
from models.base import utcnow

blp = ApiBlueprint("auth", __name__, url_prefix="/v1/auth", description="Accounts and JWT sessions")

PHONE = r"^\+?[0-9][0-9 ()-]{5,30}$"
PASSWORD_RULES = validate.Length(min=10, max=1024)  # a new password, at registration or when changed


def device_name_field():
    return fields.String(load_default=None, allow_none=True, load_only=True, validate=validate.Length(max=DEVICE_CHARS),
                         metadata={"description": "How the session list names this device (e.g. \"Anna's iPhone\"); "
                                                  "without it, the start of the User-Agent"})


class UserSchema(StrictSchema):
    id = fields.UUID(dump_only=True)
    email = fields.Email(required=True)
    role = fields.String(dump_only=True)
    birth_date = fields.Date(allow_none=True)
    phone = fields.String(allow_none=True)
    created_at = UtcDateTime(dump_only=True)


class RegisterSchema(StrictSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, load_only=True, validate=PASSWORD_RULES)
    device_name = device_name_field()
    birth_date = fields.Date(load_default=None, allow_none=True)
    phone = fields.String(
        load_default=None,
        allow_none=True,
        validate=FullMatch(PHONE, error="Use digits, optionally with a leading +."),
    )

    @validates("birth_date")
    def birth_date_in_past(self, value, **kwargs):
        if value is not None and not (date(1900, 1, 1) <= value <= date.today()):
            raise ValidationError("Must be between 1900-01-01 and today.")

    @post_load
    def tidy_phone(self, data, **kwargs):
        if data.get("phone"):
            data["phone"] = "".join(ch for ch in data["phone"] if ch.isdigit() or ch == "+")
        return data


class LoginSchema(StrictSchema):
    email = fields.String(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=1024))
    device_name = device_name_field()


class TokensSchema(StrictSchema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "Access token lifetime in seconds"})


class SessionSchema(TokensSchema):
    user = fields.Nested(UserSchema, required=True)


def session_origin(data):
    """What a new session keeps of where it was opened (``GET /v1/me/sessions``)."""
    return {"device": data.get("device_name") or request.headers.get("User-Agent"), "address": request.remote_addr}


def _login_email():
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    return email if isinstance(email, str) and not unstorable(email) else None


INSTALLATION_HEADER = "X-Installation-Token"
INSTALLATION_PARAMETER = {
    "in": "header", "name": INSTALLATION_HEADER, "required": False, "schema": {"type": "string", "maxLength": 4096},
    "description": "The installation's token (POST /v1/installations): its devices, push tokens, locations and "
                   "consents move to the account, the newest explicit choice of each permission winning "
                   "(README, Installations); the installation is closed."}


def _merging_installation():
    """The installation named by ``X-Installation-Token``, or None without
    the header; 401 for a token that is not a live installation's."""
    token = request.headers.get(INSTALLATION_HEADER)
    if token is None:
        return None
    installation = installation_of(token.strip()) if len(token) <= 4096 else None
    if installation is None:
        raise Unauthorized("The installation token is not valid (revoked, merged or not an installation's).",
                           code="invalid_installation_token")
    return installation


def _merge(user, installation):
    if installation is None:
        return
    try:
        installations.merge(user, installation, ChangeContext(
            source="installation", ip=request.remote_addr, user_agent=request.user_agent.string or None))
    except installations.InstallationGone:
        raise Unauthorized("The installation was merged or erased meanwhile.",
                           code="invalid_installation_token") from None


def _refresh_session_key():
    """Per session, not per address: a carrier's address carries thousands
    of apps refreshing every few minutes."""
    return "refresh:" + str(get_jwt().get("sid"))


@blp.route("/register", methods=["POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_REGISTER"])
@blp.arguments(RegisterSchema)
@blp.doc(parameters=[INSTALLATION_PARAMETER])
@blp.response(201, SessionSchema)
@blp.alt_response(401, response="UNAUTHORIZED", description="invalid_installation_token: X-Installation-Token "
                                                             "is not a live installation's")
@blp.alt_response(409, response="CONFLICT", description="Email already registered")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def register(data):
    """Create an account and open a session; with ``X-Installation-Token``,
    the installation becomes the account's in the same transaction."""
    installation = _merging_installation()
    with write_transaction():
        # a conflict is skipped, not refused: a refused insert would log the address (PostgreSQL's DETAIL)
        inserted = list(User.insert(
            email=data["email"].strip(),
            email_normalized=User.normalize_email(data["email"]),
            password_hash=hash_password(data["password"]),
            birth_date=data["birth_date"],
            phone=data["phone"],
            created_at=utcnow(),
        ).on_conflict_ignore().returning(User.id).execute())
        if not inserted:
            raise Conflict("This email is already registered.", code="email_taken",
                           details={"email": ["Already registered."]})
        user = User.get_by_id(inserted[0].id)
        _merge(user, installation)
        tokens = open_session(user, **session_origin(data))
    return {"user": user, **tokens}


@blp.route("/login", methods=["POST"])
@login_limits(_login_email)
@blp.arguments(LoginSchema)
@blp.doc(parameters=[INSTALLATION_PARAMETER])
@blp.response(200, SessionSchema)
@blp.alt_response(401, response="UNAUTHORIZED", description="Wrong email or password")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def login(data):
    """Exchange email and password for an access and a refresh token; with
    ``X-Installation-Token``, the installation becomes the account's in one
    transaction with the session's opening."""
    installation = _merging_installation()
    user = authenticate(data["email"], data["password"])
    if user is None:
        raise Unauthorized("Wrong email or password.", code="invalid_credentials")
    with write_transaction():
        _merge(user, installation)
        tokens = open_session(user, **session_origin(data))
    return {"user": user, **tokens}


@blp.route("/refresh", methods=["POST"])
@blp.auth(refresh=True)
@limiter.limit(lambda: current_app.config["RATELIMIT_REFRESH"], key_func=_refresh_session_key)
@blp.response(200, TokensSchema)
def refresh():
    """Rotate the refresh token. Presenting one that was already rotated
    revokes the whole session."""
    try:
        return rotate_session(current_user, get_jwt())
    except RefreshReused:
        raise Unauthorized(
            "This refresh token was already used; the session has been revoked.", code="token_reused",
            headers=BAD_TOKEN) from None


@blp.route("/logout", methods=["POST"])
@blp.auth(any_token=True)
@blp.response(204)
def logout():
    """End the session: its access and refresh tokens stop working."""
    close_session(get_jwt())


@blp.route("/logout-all", methods=["POST"])
@blp.auth(any_token=True)
@blp.response(204)
def logout_all():
    """End every session of the account, this one included (e.g. after
    losing a phone): all their access and refresh tokens stop working."""
    revoke_all_sessions(current_user, "logout_all")
