"""One-click unsubscribe links of marketing pushes: sealed so that they
name nobody readably, bound to the grant they were sent under, and
expiring."""
import base64
import binascii
import os
import struct
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from itsdangerous import BadData, URLSafeSerializer

import consent
from core.errors import BadRequest, Gone
from models.account import User
from models.base import utcnow

UNSUBSCRIBE_SALT = "marketing-unsubscribe"


# -- one-click unsubscribe ---------------------------------------------------------------
# A link names one grant of marketing_push and when it was issued, sealed
# (AES-GCM under a key derived from SECRET_KEY) so that neither the push
# service nor anyone who sees the message can tell whose it is, or link two
# messages to one person. Layout: version, nonce, then the sealed
# (user id, grant time in microseconds, issue time in seconds).

LINK_VERSION = b"\x01"
_LINK = struct.Struct(">16sqI")
_NONCE_BYTES = 12
_SEALED_BYTES = len(LINK_VERSION) + _NONCE_BYTES + _LINK.size + 16  # AES-GCM tag
_EPOCH = datetime(1970, 1, 1)


def _cipher():
    app = current_app._get_current_object()
    secret = app.config["SECRET_KEY"]
    cached = app.extensions.get("unsubscribe_cipher")
    if cached is None or cached[0] != secret:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=UNSUBSCRIBE_SALT.encode()).derive(secret.encode())
        cached = app.extensions["unsubscribe_cipher"] = (secret, AESGCM(key))
    return cached[1]


def _micros(moment):
    return (moment - _EPOCH) // timedelta(microseconds=1)


def unsubscribe_token(user_id, granted_at, issued_at=None):
    """The link of a marketing push to ``user_id``, sent under the grant of
    marketing_push made at ``granted_at``."""
    issued_at = issued_at or utcnow()
    plain = _LINK.pack(uuid.UUID(str(user_id)).bytes, _micros(granted_at or _EPOCH),
                       int((issued_at - _EPOCH).total_seconds()))
    nonce = os.urandom(_NONCE_BYTES)
    sealed = LINK_VERSION + nonce + _cipher().encrypt(nonce, plain, LINK_VERSION)
    return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()


@dataclass(frozen=True)
class UnsubscribeLink:
    user_id: uuid.UUID
    granted_at: datetime
    issued_at: datetime


class InvalidUnsubscribeToken(BadRequest):
    code, message = "invalid_token", "This unsubscribe link is not valid."


class ExpiredUnsubscribeLink(Gone):
    code = "link_expired"
    message = ("This unsubscribe link has expired or a later choice replaced it. "
               "Choose which notifications you get under Privacy in the app.")


def _unseal(token):
    if len(token) > 2 * _SEALED_BYTES:
        return None
    try:
        sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(sealed) != _SEALED_BYTES or not sealed.startswith(LINK_VERSION):
        return None
    nonce, body = sealed[1:1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES:]
    try:
        return _cipher().decrypt(nonce, body, LINK_VERSION)
    except InvalidTag:
        return None


def _is_unbound_link(token):
    """A link of the first form (signed, user id readable, bound to no
    grant and no date): it could withdraw any later grant, so it only expires."""
    try:
        URLSafeSerializer(current_app.config["SECRET_KEY"], salt=UNSUBSCRIBE_SALT).loads(token)
    except (BadData, ValueError):
        return False
    return True


def read_unsubscribe_token(token):
    """The link's contents. A link this server did not issue answers
    ``invalid_token``; one older than ``UNSUBSCRIBE_TOKEN_DAYS`` (decided
    from the link alone, whoever it names) answers ``link_expired``."""
    plain = _unseal(token)
    if plain is None:
        raise ExpiredUnsubscribeLink() if _is_unbound_link(token) else InvalidUnsubscribeToken()
    user, granted, issued = _LINK.unpack(plain)
    link = UnsubscribeLink(uuid.UUID(bytes=user), _EPOCH + timedelta(microseconds=granted),
                           _EPOCH + timedelta(seconds=issued))
    if utcnow() - link.issued_at > timedelta(days=current_app.config["UNSUBSCRIBE_TOKEN_DAYS"]):
        raise ExpiredUnsubscribeLink()
    return link


def _link_user(link):
    """The link's user; an erased one answers as a link never issued does."""
    user = User.get_or_none(User.id == link.user_id)
    if user is None:
        raise InvalidUnsubscribeToken()
    return user


def describe_unsubscribe(token):
    """Check the link as ``unsubscribe`` would, changing nothing."""
    link = read_unsubscribe_token(token)
    user = _link_user(link)
    if consent.grant_status(consent.subject_for(user), "marketing_push", link.granted_at) == consent.SUPERSEDED:
        raise ExpiredUnsubscribeLink()


def unsubscribe(token, context):
    """Withdraw the grant of marketing_push the link was sent under, and
    only that one; a second use finds it withdrawn and changes nothing."""
    link = read_unsubscribe_token(token)
    user = _link_user(link)
    if consent.withdraw_grant(user, "marketing_push", link.granted_at, context) == consent.SUPERSEDED:
        raise ExpiredUnsubscribeLink()
