"""peewee models and their queries."""
from models.account import AuthSession, User
from models.base import BaseModel, db, is_postgres, utcnow, write_transaction
from models.consent import Consent, GuardianConsent, LedgerEntry, PolicyChange, PolicyVersion

ALL_MODELS = [User, AuthSession, PolicyVersion, PolicyChange, Consent, GuardianConsent, LedgerEntry]

__all__ = [
    "ALL_MODELS", "AuthSession", "BaseModel", "Consent", "GuardianConsent", "LedgerEntry", "PolicyChange",
    "PolicyVersion", "User", "db", "is_postgres", "utcnow", "write_transaction",
]
