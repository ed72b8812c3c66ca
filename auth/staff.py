"""Staff management: who has which role, changing a role, and removing
staff access. Staff accounts are made by ``create-admin`` only (an address
registered through the app may belong to someone other than the operator
naming it), so a role change applies to staff only. Removing staff access
makes the account a plain user; it is not deleted. Every change revokes the
account's sessions and is audited. The last administrator cannot demote
or remove itself: nobody could manage staff after it."""
from auth import audit
from auth.sessions import change_credentials
from core.errors import Conflict, NotFound
from models.account import STAFF_ROLES, User
from models.base import lock_value, write_transaction


class LastAdmin(Conflict):
    code = "last_admin"
    message = "This is the last administrator: make another administrator first."


def list_staff():
    """Staff accounts, administrators first, then by email."""
    return list(User.select().where(User.role.in_(STAFF_ROLES)).order_by(User.role, User.email_normalized))


def staff_member(user_id):
    """The staff account ``user_id``; ``NotFound`` for anyone else."""
    member = User.get_or_none((User.id == user_id) & User.role.in_(STAFF_ROLES))
    if member is None:
        raise NotFound("No such staff member.", code="not_staff")
    return member


def refuse_losing_the_last_admin(member, role):
    """``LastAdmin`` when giving ``member`` ``role`` would leave no administrator.
    The caller holds the ``staff`` lock (``lock_value("staff", "roles")``)."""
    if member.role == "admin" and role != "admin":
        if User.select().where(User.role == "admin").count() <= 1:
            raise LastAdmin()


def _set_role(actor, member, role, action):
    with write_transaction():
        # two administrators demoting each other at once must not leave none
        lock_value("staff", "roles")
        member = User.get_by_id(member.id)
        if role == member.role:
            return member
        if member.role not in STAFF_ROLES:
            raise NotFound("No such staff member.", code="not_staff")
        refuse_losing_the_last_admin(member, role)
        before = member.role
        change_credentials(member, role=role)
        audit.record(actor, action, f"staff:{member.id}", {"from": before, "to": role})
    return member


def change_role(actor, member, role):
    """Give staff member ``member`` the staff role ``role``; their sessions are revoked."""
    if role not in STAFF_ROLES:
        raise ValueError(role)
    return _set_role(actor, member, role, "staff.role_change")


def remove(actor, member):
    """Remove ``member``'s staff access: a plain user from now on, sessions revoked."""
    return _set_role(actor, member, "user", "staff.remove")
