"""peewee models and their queries."""
from models.account import AuthSession, User
from models.audit import AuditEntry
from models.base import BaseModel, db, is_postgres, utcnow, write_transaction
from models.consent import Consent, ConsentSummary, GuardianConsent, LedgerEntry, PolicyChange, PolicyVersion
from models.device import Device, DeviceReport, Location, PushToken
from models.push import Campaign, CampaignExclusion, CampaignSlice, Delivery

ALL_MODELS = [User, AuthSession, PolicyVersion, PolicyChange, Consent, ConsentSummary, GuardianConsent, LedgerEntry,
              Device, DeviceReport, PushToken, Location, Campaign, CampaignSlice, CampaignExclusion, Delivery,
              AuditEntry]

__all__ = [
    "ALL_MODELS", "AuditEntry", "AuthSession", "BaseModel", "Campaign", "CampaignExclusion", "CampaignSlice", "Consent", "ConsentSummary", "Delivery", "Device", "DeviceReport", "GuardianConsent",
    "LedgerEntry", "Location", "PolicyChange", "PushToken",
    "PolicyVersion", "User", "db", "is_postgres", "utcnow", "write_transaction",
]
