"""JWT sessions: opening, rotating and closing them, and revoking every
session of an account (revocations live in ``auth.revocations``)."""
import re
import time
import uuid
from datetime import datetime, timedelta

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from jwt.exceptions import PyJWTError
from huey import crontab

from auth import audit
from auth.passwords import hash_password
from auth.revocations import DatabaseRevocations, RedisRevocations
from core.addresses import truncate_ip
from core.worker import queued, task_context
from models import AuthSession, User, db, write_transaction

# How long the access token of a login counts as fresh: enough to confirm
# an erasure without typing the password again (``DELETE /v1/me``).
FRESH_FOR = timedelta(minutes=5)
DEVICE_CHARS = 64
_NOT_PRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def revocations():
    return current_app.extensions["revocations"]


def init_revocations(app):
    url = app.config["REDIS_URL"]
    if url:
        import redis

        ttl = int(app.config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds())
        app.extensions["revocations"] = RedisRevocations(
            redis.Redis.from_url(url, **app.config["REDIS_CLIENT_OPTIONS"]), ttl)
    else:
        app.extensions["revocations"] = DatabaseRevocations()


def _token_pair(user, session_id, refresh_jti, fresh=False):
    claims = {"sid": str(session_id)}
    access = create_access_token(identity=str(user.id), fresh=fresh, additional_claims=claims)
    refresh = create_refresh_token(identity=str(user.id), additional_claims={**claims, "jti": refresh_jti})
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()),
    }


def device_label(named=None, user_agent=None):
    """What a session list shows for the device: the name the app gave, or
    the start of the User-Agent, without control characters or runs of
    spaces, at most ``DEVICE_CHARS`` characters (no more is kept)."""
    text = " ".join(_NOT_PRINTABLE.sub(" ", named or user_agent or "").split())
    return text[:DEVICE_CHARS] or None


def open_session(user, device=None, address=None):
    """A new session after the user proved the password: its access token
    is fresh for ``FRESH_FOR``. ``address`` is kept only as its network. A
    staff member's sign-in is audited, in the transaction that opens the session."""
    jti = uuid.uuid4().hex
    with db.atomic() if db.in_transaction() else write_transaction():
        session = AuthSession.open(user, jti, current_app.config["JWT_REFRESH_TOKEN_EXPIRES"],
                                   device=device_label(device), address=truncate_ip(address))
        if user.is_staff:
            audit.record(user, "sign_in", f"staff:{user.id}", {"session_id": str(session.id)})
    return _token_pair(user, session.id, jti, fresh=FRESH_FOR)


def is_fresh(payload):
    """Whether the access token ``payload`` came from a login less than
    ``FRESH_FOR`` ago (refreshed tokens never are)."""
    fresh = payload.get("fresh")
    if isinstance(fresh, bool):
        return fresh
    return isinstance(fresh, (int, float)) and time.time() <= fresh


# An installation's session lasts as long as the installation: its retention
# (``INSTALLATION_RETENTION_DAYS`` without a request) erases both.
INSTALLATION_SESSION_END = datetime(9999, 1, 1)
INSTALLATION_CLAIMS = {"kind": "installation"}


def open_installation_session(installation):
    """The installation's token: an access token without expiry whose claim
    ``kind`` is ``installation``, backed by a session row so that it is
    revoked as an account's tokens are. It has no refresh token."""
    with db.atomic() if db.in_transaction() else write_transaction():
        session = AuthSession.create(user=installation, refresh_jti=uuid.uuid4().hex,
                                     expires_at=INSTALLATION_SESSION_END)
    return create_access_token(identity=str(installation.id), expires_delta=False,
                               additional_claims={"sid": str(session.id), **INSTALLATION_CLAIMS})


def token_kind(payload):
    """``installation`` for an installation's token, ``account`` for any other."""
    return "installation" if payload.get("kind") == "installation" else "account"


def installation_of(token):
    """The live installation row a token presented outside the Authorization
    header stands for (sign-in from an installation), or None for anything
    else: not a token of ours, revoked, or an account's."""
    try:
        payload = decode_token(token)
    except PyJWTError:
        return None
    except Exception:  # noqa: BLE001 - flask-jwt-extended's own errors (wrong type, missing claims)
        return None
    if payload.get("type") != "access" or token_kind(payload) != "installation":
        return None
    user = revocations().live_user(payload)
    return user if user is not None and user.is_installation else None


def close_installation(installation):
    """Revoke every token of an installation (merged or erased)."""
    revoke_all_sessions(installation, "installation_closed")


class RefreshReused(Exception):
    """A refresh token that was already rotated came back: the family is revoked."""


def rotate_session(user, payload):
    """New tokens for the session of ``payload`` (a refresh token). The same
    token presented again within ``REFRESH_REUSE_GRACE_SECONDS`` of its
    rotation (an app refreshing from several requests at once) gets the same
    successor. Presented later, it is taken as stolen: the whole session,
    including its newest refresh token, is revoked."""
    config = current_app.config
    grace = timedelta(seconds=config["REFRESH_REUSE_GRACE_SECONDS"])
    jti = AuthSession.rotate(payload["sid"], payload["jti"], uuid.uuid4().hex,
                             config["JWT_REFRESH_TOKEN_EXPIRES"], grace)
    if jti is None:
        revocations().revoke([payload["sid"]], "refresh_reused")
        raise RefreshReused()
    return _token_pair(user, payload["sid"], jti)


def renew_access(payload):
    """A new access token for the session of ``payload`` (an access token's
    claims): the same ``sid`` and, when it has one, the same ``csrf`` (the
    page's forms keep working); None when the session is no longer live
    (revoked, expired, or not the token's user's), which is never renewed."""
    user = revocations().live_user(payload)
    if user is None:
        return None
    claims = {"sid": str(payload["sid"])}
    if payload.get("csrf"):
        claims["csrf"] = payload["csrf"]
    return create_access_token(identity=str(user.id), fresh=False, additional_claims=claims)


def close_session(payload):
    """End the session of ``payload`` (a token); a staff member's sign-out is audited."""
    revocations().revoke([payload["sid"]], "logout")
    user = User.get_or_none(User.id == payload["sub"])
    if user is not None and user.is_staff:
        audit.record(user, "sign_out", f"staff:{user.id}", {"session_id": str(payload["sid"])})


def revoke_session(user, session_id, reason):
    """Revoke one open session of ``user``; False if it is not one."""
    ids = AuthSession.open_ids(user.id, session_id)
    if ids:
        revocations().revoke(ids, reason)
    return bool(ids)


def revoke_all_sessions(user, reason, keep=None):
    """Revoke every session of ``user`` but ``keep`` (a session id)."""
    query = AuthSession.select(AuthSession.id).where(AuthSession.user == user)
    if keep is not None:
        query = query.where(AuthSession.id != keep)
    ids = [s.id for s in query]
    if ids:
        revocations().revoke(ids, reason)


def change_credentials(user, *, password=None, role=None, keep=None):
    """Set a new password and/or role. Every session of the account is
    revoked (but ``keep``, the session of a user who changed the password
    himself): tokens issued before must not carry the new role, nor outlive
    the password they were obtained with."""
    reason = "role_changed" if role not in (None, user.role) else "password_changed"
    if password is not None:
        user.password_hash = hash_password(password)
    if role is not None:
        user.role = role
    user.save()
    revoke_all_sessions(user, reason, keep=keep)


@queued(periodic=crontab(minute="37", hour="3"))
def purge_expired_sessions():
    """Sessions whose refresh tokens can no longer be used."""
    with task_context():
        return AuthSession.purge_expired()


def register_tasks(queue):
    """Put the clean-up of expired sessions on ``queue``."""
    purge_expired_sessions.bind(queue)
