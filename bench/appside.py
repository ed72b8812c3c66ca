"""The application as the benchmarks see it: every import of the app's own
modules (and of the FCM-protocol test server) is in this file, so that a
move of those modules changes this file only.

The imports sit inside the functions: the harness sets the environment the
app reads before it builds the app, and processes that never touch the app
(the report, the wrk driver) do not load it."""
from contextlib import contextmanager

FLASK_APP = "app"  # for `flask --app ... migrate`
HUEY_INSTANCE = "app.huey"  # for huey_consumer


def create_app():
    from app import create_app as factory

    return factory()


@contextmanager
def app_context(app):
    """A request context and a database connection, as a request has."""
    from models.base import db

    with app.test_request_context(), db.connection_context():
        yield


def execute(sql, params=None):
    """Rows of ``sql`` on the app's own connection (inside ``app_context``)."""
    from models.base import db

    return db.execute_sql(sql, params).fetchall()


# -- seeding ------------------------------------------------------------------------

def hash_password(password):
    from auth.passwords import hash_password as digest

    return digest(password)


def user_with_device(email, password_hash, consents, device):
    """A user whose ``consents`` are set from the app, with ``device``
    registered as the app reports it; returns (access token, device id)."""
    import consent
    from auth.sessions import open_session
    from collection.devices import register_device
    from consent.ledger import ChangeContext
    from models import User
    from models.base import utcnow

    user = User.create(email=email, email_normalized=email, password_hash=password_hash, created_at=utcnow())
    consent.set_consents(user, consents, ChangeContext(source="app"))
    registered, _, _ = register_device(user, device)
    return open_session(user)["access_token"], registered.id


def seed_functions():
    """(coarsen, version_number, gated fields): how the app stores an
    approximate location, (latitude, longitude, cell), the number it sorts an
    app version by, and the device details kept only with ``device_info``.
    Looked up once, as the bulk seed calls them for every row."""
    from collection import geohash
    from models.device import GATED_DEVICE_FIELDS, Device

    return geohash.coarsen, Device.version_number, GATED_DEVICE_FIELDS


# -- consent checks ----------------------------------------------------------------

def some_users(limit):
    from models import User

    return list(User.select().limit(limit))


def check_uncached(user, permission):
    """The effective-consent check with the per-request cache emptied first."""
    import consent

    consent.forget(user)
    return consent.check(user, permission)


# -- push -----------------------------------------------------------------------------

def fcm_provider(credentials, project_id, base_url):
    from push.providers import FcmProvider

    return FcmProvider(credentials, project_id, base_url)


def push_message(token, title, body, data):
    from push.providers import Message

    return Message(token=token, title=title, body=body, data=data)


def fake_fcm_server():
    from devtools.fakefcm import FakeFcmServer

    return FakeFcmServer()


def create_campaign(fields):
    from push import campaigns

    return campaigns.create(fields, None)


def send_campaign(campaign):
    from push import campaigns

    campaigns.send(campaign, None)


def campaign_status(campaign_id):
    """The campaign's status column alone (one cheap query, for polling)."""
    from models.push import Campaign

    return Campaign.select(Campaign.status).where(Campaign.id == campaign_id).scalar()


def campaign_counters(campaign_id):
    from models.push import Campaign
    from push import campaigns

    return campaigns.status(Campaign.get_by_id(campaign_id))


def audience_preview(audience):
    """The preview of a marketing campaign to ``audience``, without storing it."""
    from models.push import Campaign
    from push import audience as audiences

    return audiences.preview(Campaign(kind="marketing", audience=audience))
