"""The permission catalogue (docs/architecture.md, "The permission
catalogue"): data, not code. ``policy_section`` names the section of the
site's privacy policy a permission rests on ("1.2(3)" is policy §1.2(3))."""
from dataclasses import dataclass, field

from models.consent import KEYS as SCHEMA_KEYS


@dataclass(frozen=True)
class Permission:
    key: str
    title: str
    description: str
    policy_section: str
    requires: tuple = field(default_factory=tuple)
    sensitive: bool = False
    minors_allowed: bool = True
    # Policy §7: a minor uses the services only with a parent's or
    # guardian's written consent, so every permission open to minors needs it.
    guardian_required: bool = True
    # Data is kept under this permission, so its withdrawal must remove it
    # (a registered withdrawal effect; ``create_app`` refuses to start without).
    stores_data: bool = False
    # How a consent receipt names the purpose (consent/receipts.py), in the
    # vocabulary of the Kantara Consent Receipt Specification v1.1.
    purpose_categories: tuple = field(default_factory=tuple)
    pii_categories: tuple = field(default_factory=tuple)
    primary_purpose: bool = True  # part of the service asked for, not an extra
    third_party_disclosure: bool = False


PERMISSIONS = (
    Permission(
        key="device_info",
        title="Device details",
        description="Keep your phone's model, manufacturer, operating system version, screen size, "
        "mobile carrier, language and time zone. Without it we keep only the install id, platform "
        "and app version.",
        policy_section="1.2(3)",
        stores_data=True,
        purpose_categories=("Core Function",),
        pii_categories=("Network/Service",),
    ),
    Permission(
        key="location",
        title="Approximate location",
        description="Keep where your phone is, rounded to an area of about 5 km, for delivery "
        "estimates and offers near you.",
        policy_section="1.2(2)",
        stores_data=True,
        sensitive=True,
        purpose_categories=("Delivery", "Personalized Experience"),
        pii_categories=("Location",),
    ),
    Permission(
        key="precise_location",
        title="Precise location",
        description="Keep your location exactly as your phone reports it instead of rounding it.",
        policy_section="1.2(2)",
        stores_data=True,
        requires=("location",),
        sensitive=True,
        minors_allowed=False,
        purpose_categories=("Delivery", "Personalized Experience"),
        pii_categories=("Location",),
    ),
    Permission(
        key="service_push",
        title="Service notifications",
        description="Notifications about your orders, deliveries and account security.",
        policy_section="2.1",
        stores_data=True,
        purpose_categories=("Contracted Service",),
        pii_categories=("Contact",),
    ),
    Permission(
        key="marketing_push",
        title="Offers and promotions",
        description="Notifications about products and promotions. Every one carries a one-tap "
        "unsubscribe.",
        policy_section="2.2",
        stores_data=True,
        minors_allowed=False,
        purpose_categories=("Marketing",),
        pii_categories=("Contact",),
        primary_purpose=False,
    ),
    Permission(
        key="personalization",
        title="Personalised offers",
        description="Choose what we show or send you from your device, area and activity. "
        "Without it you only get offers sent to everyone.",
        policy_section="2.2, 2.4",
        purpose_categories=("Personalized Experience",),
        pii_categories=("Behavioral", "Profiling"),
        primary_purpose=False,
    ),
    Permission(
        key="partner_sharing",
        title="Sharing with partners",
        description="Share your details with our partners so that they can send you their offers.",
        policy_section="2.2, 3.3",
        minors_allowed=False,
        purpose_categories=("Marketing Third Parties", "Sharing for Marketing"),
        pii_categories=("Contact", "Behavioral"),
        primary_purpose=False,
        third_party_disclosure=True,
    ),
    Permission(
        key="usage_statistics",
        title="Usage statistics",
        description="Count your device in statistics about how the app is used. Statistics never "
        "identify you.",
        policy_section="2.5",
        purpose_categories=("Improve Performance",),
        pii_categories=("Network/Service",),
        primary_purpose=False,
    ),
)

BY_KEY = {permission.key: permission for permission in PERMISSIONS}
KEYS = tuple(BY_KEY)
if KEYS != SCHEMA_KEYS:
    raise RuntimeError(f"the catalogue's permissions {KEYS} are not the schema's {SCHEMA_KEYS} (models.consent.KEYS)")
PUSH_PERMISSIONS = ("service_push", "marketing_push")
# Not a permission: the ledger's record of a guardian's written consent.
GUARDIAN_CONSENT = "guardian_consent"


def get(key):
    return BY_KEY[key]
