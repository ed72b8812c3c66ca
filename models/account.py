"""Accounts and their sessions (one session = one refresh-token family)."""
import uuid
from datetime import timedelta

from peewee import BooleanField, CharField, DateField, DateTimeField, ForeignKeyField, UUIDField

from models.base import BaseModel, utcnow

# Staff roles, least privilege: ``admin`` manages staff and may do
# everything; ``campaigns`` runs campaigns, previews and aggregate
# statistics; ``privacy`` answers privacy requests (a user's record,
# guardian consent, policy versions, export and erasure).
STAFF_ROLES = ("admin", "campaigns", "privacy")
ROLES = ("user",) + STAFF_ROLES
# The kinds of consent subject (``User.kind``).
ACCOUNT, INSTALLATION = "account", "installation"
KINDS = (ACCOUNT, INSTALLATION)


class User(BaseModel):
    id = UUIDField(primary_key=True, default=uuid.uuid4)
    # An account signs in with an email and a password; an installation (the
    # app before sign-in, a consent subject of its own) has neither, only
    # its ``installation_id``. Every rule, ledger chain and data path keys on
    # this row whatever its kind; what lists or counts people for staff
    # says which kind it means (``accounts()``).
    kind = CharField(max_length=16, default="account")
    email = CharField(max_length=254, null=True)
    email_normalized = CharField(max_length=254, unique=True, null=True)
    password_hash = CharField(max_length=255, null=True)
    installation_id = CharField(max_length=128, unique=True, null=True)
    last_seen_at = DateTimeField(null=True)  # an installation's last request, for its retention
    role = CharField(max_length=16, default="user")
    # False only for accounts made by ``create-admin``: a self-registered
    # address may belong to someone other than the operator who names it.
    self_registered = BooleanField(default=True)
    birth_date = DateField(null=True)
    phone = CharField(max_length=32, null=True)
    # Random and unrelated to anything else, so that after erasure the
    # consent ledger names nobody (see consent ledger).
    ledger_subject = UUIDField(unique=True, default=uuid.uuid4)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("kind", "last_seen_at"), False),)

    @classmethod
    def accounts(cls, *fields):
        """Accounts only: what lists or counts people for staff starts here."""
        return cls.select(*fields).where(cls.kind == ACCOUNT)

    @property
    def is_installation(self):
        return self.kind == INSTALLATION

    @staticmethod
    def normalize_email(email):
        return email.strip().lower()

    @classmethod
    def by_email(cls, email):
        return cls.get_or_none((cls.email_normalized == cls.normalize_email(email)) & (cls.kind == ACCOUNT))

    @property
    def is_admin(self):
        return self.role == "admin"

    @property
    def is_staff(self):
        return self.role in STAFF_ROLES

    def has_role(self, *roles):
        """True for an administrator, or for staff holding one of ``roles``."""
        return self.role == "admin" or self.role in roles


class AuthSession(BaseModel):
    """A login. Access and refresh tokens carry its id (claim ``sid``);
    ``refresh_jti`` is the only refresh token of the family still usable."""

    id = UUIDField(primary_key=True, default=uuid.uuid4)
    user = ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    refresh_jti = CharField(max_length=64)
    previous_refresh_jti = CharField(max_length=64, null=True)  # honoured within the reuse grace
    created_at = DateTimeField(default=utcnow)
    refreshed_at = DateTimeField(null=True)
    expires_at = DateTimeField(index=True)
    revoked_at = DateTimeField(null=True)
    revoked_reason = CharField(max_length=32, null=True)
    # What the user sees to tell sessions apart: the device named at login
    # and the client's network (/24 or /48), never its whole address.
    device = CharField(max_length=64, null=True)
    address = CharField(max_length=45, null=True)

    class Meta:
        table_name = "auth_session"

    @classmethod
    def open(cls, user, refresh_jti, lifetime, device=None, address=None):
        now = utcnow()
        return cls.create(user=user, refresh_jti=refresh_jti, created_at=now, expires_at=now + lifetime,
                          device=device, address=address)

    @classmethod
    def open_for(cls, user_id, limit=100):
        """The user's sessions that can still be used, newest first."""
        return list(
            cls.select(cls.id, cls.device, cls.address, cls.created_at, cls.refreshed_at)
            .where((cls.user == user_id) & cls.revoked_at.is_null() & (cls.expires_at > utcnow()))
            .order_by(cls.created_at.desc(), cls.id)
            .limit(limit)
        )

    @classmethod
    def open_ids(cls, user_id, session_id):
        """[``session_id``] if it is an open session of the user, else []."""
        return [s.id for s in cls.select(cls.id).where(
            (cls.id == session_id) & (cls.user == user_id) & cls.revoked_at.is_null() & (cls.expires_at > utcnow()))]

    @classmethod
    def rotate(cls, session_id, presented_jti, new_jti, lifetime, grace):
        """The family's refresh token after presenting ``presented_jti``:
        ``new_jti`` if it was the current one, the current one if it is the
        one rotated less than ``grace`` ago (a concurrent refresh), None
        otherwise (a reuse, or the session is gone or revoked). The swap is
        one conditional UPDATE, so of concurrent refreshes exactly one wins
        and the others, having waited for its row lock, read its successor."""
        now = utcnow()
        changed = (
            cls.update(refresh_jti=new_jti, previous_refresh_jti=presented_jti, refreshed_at=now,
                       expires_at=now + lifetime)
            .where(
                (cls.id == session_id)
                & (cls.refresh_jti == presented_jti)
                & cls.revoked_at.is_null()
            )
            .execute()
        )
        if changed == 1:
            return new_jti
        successor = (
            cls.select(cls.refresh_jti)
            .where(
                (cls.id == session_id)
                & (cls.previous_refresh_jti == presented_jti)
                & (cls.refreshed_at > now - grace)
                & cls.revoked_at.is_null()
            )
            .first()
        )
        return successor.refresh_jti if successor else None

    @classmethod
    def revoke(cls, session_ids, reason):
        return (
            cls.update(revoked_at=utcnow(), revoked_reason=reason)
            .where(cls.id.in_(list(session_ids)) & cls.revoked_at.is_null())
            .execute()
        )

    @classmethod
    def is_live(cls, session_id):
        return cls.select().where((cls.id == session_id) & cls.revoked_at.is_null()).exists()

    @classmethod
    def active_user(cls, session_id, user_id):
        """The user behind a live session, in one indexed query."""
        return (
            User.select()
            .join(cls, on=(cls.user == User.id))
            .where((cls.id == session_id) & (User.id == user_id) & cls.revoked_at.is_null())
            .first()
        )

    @classmethod
    def purge_expired(cls, grace=timedelta(days=1)):
        return cls.delete().where(cls.expires_at < utcnow() - grace).execute()
