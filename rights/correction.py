"""The right to correct: email, phone and birth date (policy §5)."""
import consent
from consent.ledger import ChangeContext
from core.errors import Conflict
from models.account import User
from models.base import write_transaction

def correct(user, changes, context):
    """Correct email, phone or birth date. A birth-date change re-evaluates
    minor status at once: what stops being in effect is withdrawn with a
    ``system`` ledger entry giving the reason, and a grant made while a rule
    refused it stays out of effect (``reconfirm``), with a ``system`` entry
    saying so."""
    with write_transaction():
        consent.lock_user(user)
        before = consent.decide_all(consent.load_subjects([user])[user.id])
        if "email" in changes:
            normalized = User.normalize_email(changes["email"])
            taken = User.select().where((User.email_normalized == normalized) & (User.id != user.id)).exists()
            if taken:
                raise Conflict("This email is already registered.", code="email_taken",
                               details={"email": ["Already registered."]})
            user.email, user.email_normalized = changes["email"].strip(), normalized
        if "phone" in changes:
            user.phone = changes["phone"]
        if "birth_date" in changes:
            user.birth_date = changes["birth_date"]
        user.save()
        stopped = consent.reevaluate(user, context, before) if "birth_date" in changes else []
    return stopped


def system_context():
    return ChangeContext(source="system")
