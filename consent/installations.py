"""Installations: the app before sign-in, a consent subject of its own (a
``user`` row of kind ``installation``), and its merge into the account it
signs in to. The rules, the ledger and the withdrawal effects are the ones
every subject has; nothing here decides what consent allows."""
from auth.sessions import close_installation
from consent import catalogue, ledger
from consent.changes import _apply
from consent.effects import effects
from consent.ledger import ChangeContext
from consent.rules import decide_all
from consent.subjects import forget, load_subject, user_locks
from models.account import INSTALLATION, AuthSession, User
from models.base import is_postgres, utcnow
from models.consent import Consent, ConsentSummary, LedgerEntry, PolicyVersion
from models.device import Device, DeviceReport, Location, PushToken
from models.push import Delivery

# The installation's last ledger entry: it was merged into an account.
MERGED = "merged"


class InstallationGone(Exception):
    """The installation was merged or erased meanwhile (a concurrent sign-in with its token)."""


class InstallationExists(Exception):
    """That installation id is taken, by an installation whose token was not presented."""


def create(installation_id):
    """A new installation: its id and nothing else until it has consent.
    Raises ``InstallationExists`` if the id is taken. The id is not a
    secret (the app may log it, a device row carries it), so it never
    stands for the installation by itself: only its token does."""
    now = utcnow()
    inserted = list(User.insert(kind=INSTALLATION, installation_id=installation_id, created_at=now,
                                last_seen_at=now).on_conflict_ignore().returning(User.id).execute())
    if not inserted:
        raise InstallationExists(installation_id)
    return User.get_by_id(inserted[0].id)


def _newest_entries(installation):
    """{permission: hash of the installation's newest entry for it}."""
    rows = (LedgerEntry.select(LedgerEntry.permission, LedgerEntry.hash)
            .where(LedgerEntry.user == installation).order_by(LedgerEntry.seq))
    return {row.permission: row.hash for row in rows}


def adopted_choices(account_subject, installation_subject):
    """{key: choice} the account adopts: each permission the installation
    chose explicitly and more recently than the account did (or that the
    account never chose), where the two choices differ."""
    adopted = {}
    for key in catalogue.KEYS:
        mine, theirs = account_subject.states.get(key), installation_subject.states.get(key)
        if theirs is None:
            continue
        if mine is not None and (mine.updated_at >= theirs.updated_at or mine.granted == theirs.granted):
            continue
        adopted[key] = theirs.granted
    return adopted


def merge(account, installation, context):
    """Inside the caller's transaction: the installation's newest explicit
    choices become the account's (each a ledger entry in the account's
    chain with source ``installation`` and the installation's entry's hash,
    decided by the engine for the account: a minor's rules hold), its
    devices, push tokens, locations, reports and deliveries move to the
    account, what the account's consent does not allow of them is removed
    by the withdrawal effects, the installation's chain ends with a
    ``merged`` entry, and the installation is closed and erased (its chain
    stays, detached and pseudonymous). Returns the keys adopted."""
    if is_postgres():
        user_locks(User.id.in_([account.id, installation.id])).execute()
    if not User.select().where((User.id == installation.id) & (User.kind == INSTALLATION)).exists():
        raise InstallationGone(installation.id)
    installation_subject = load_subject(installation)
    adopted = adopted_choices(load_subject(account), installation_subject)
    hashes = _newest_entries(installation)
    adopting = ChangeContext(source="installation", ip=context.ip, user_agent=context.user_agent)
    if adopted:
        _apply(account, adopted, adopting, adopted={key: hashes.get(key) for key in adopted})
    _move_data(account, installation)
    decisions = decide_all(load_subject(account))
    effects.run(account, [key for key in catalogue.KEYS if not decisions[key].effective], decisions)
    policy = PolicyVersion.current()
    ledger.append(installation, MERGED, False, policy.version if policy else "", adopting, reason=MERGED)
    _close(installation)
    forget(account)
    forget(installation)
    return sorted(adopted)


def _move_data(account, installation):
    """The installation's rows become the account's. A device the account
    already has (the same phone signed in before) keeps the account's row:
    the installation's reports and locations move onto it, its push token
    too unless the account's row has one."""
    existing = {d.installation_id: d for d in Device.select().where(Device.user == account)}
    for device in list(Device.select().where(Device.user == installation)):
        twin = existing.get(device.installation_id)
        if twin is None:
            continue
        Location.update(device=twin).where(
            (Location.device == device)
            & Location.captured_at.not_in(Location.select(Location.captured_at).where(Location.device == twin))
        ).execute()
        DeviceReport.update(device=twin).where(DeviceReport.device == device).execute()
        Delivery.update(device=twin).where(
            (Delivery.device == device)
            & Delivery.campaign.not_in(Delivery.select(Delivery.campaign).where(Delivery.device == twin))
        ).execute()
        if not PushToken.select().where(PushToken.device == twin).exists():
            PushToken.update(device=twin).where(PushToken.device == device).execute()
        Device.delete().where(Device.id == device.id).execute()
    for model in (Device, Location, DeviceReport, Delivery):
        model.update(user=account).where(model.user == installation).execute()


def _close(installation):
    """Revoke the installation's tokens and erase its row; its ledger
    entries keep their hashes, with the personal columns blanked."""
    close_installation(installation)
    ledger.forget_personal_data(installation)
    ConsentSummary.delete().where(ConsentSummary.user == installation).execute()
    Consent.delete().where(Consent.user == installation).execute()
    AuthSession.delete().where(AuthSession.user == installation).execute()
    User.delete().where(User.id == installation.id).execute()
