"""``flask --app app create-admin``: the operator's way to a staff account."""
import click
from flask.cli import with_appcontext

from auth import audit
from auth.passwords import hash_password
from auth.sessions import change_credentials
from auth.staff import LastAdmin, refuse_losing_the_last_admin
from models import User, db, write_transaction
from models.account import STAFF_ROLES
from models.base import lock_value, utcnow


@click.command("create-admin")
@with_appcontext
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--role", type=click.Choice(STAFF_ROLES), default="admin", show_default=True,
              help="The staff role: admin (everything, staff management included), campaigns or privacy.")
@click.option("--promote-existing", is_flag=True,
              help="Also promote an account that was registered through the app.")
def create_admin_command(email, password, role, promote_existing):
    """Create a staff account with ROLE, or reset one's password and role.
    Promoting an account registered through the app needs
    --promote-existing: whoever registered the address first may not be
    the operator. Either way every session of the account is revoked. The
    audit log records the change with the system as its actor."""
    if len(password) < 10:
        raise click.BadParameter("at least 10 characters", param_hint="--password")
    with db.connection_context(), write_transaction():
        lock_value("staff", "roles")
        user = User.by_email(email)
        if user is None:
            user = User.create(
                email=email.strip(),
                email_normalized=User.normalize_email(email),
                password_hash=hash_password(password),
                role=role,
                self_registered=False,
                created_at=utcnow(),
            )
            audit.record(None, "staff.create", f"staff:{user.id}", {"role": role})
            click.echo(f"created {role} staff account {email}")
        elif user.self_registered and not user.is_staff and not promote_existing:
            raise click.ClickException(
                f"{email} is an account registered through the app, not made by create-admin; "
                "nothing was changed. Check who owns it, then pass --promote-existing to make it "
                f"a {role} staff account (its password is replaced and its sessions are revoked)."
            )
        else:
            try:
                refuse_losing_the_last_admin(user, role)
            except LastAdmin:
                raise click.ClickException(
                    f"{email} is the last administrator; make another administrator first. Nothing was changed."
                ) from None
            before = user.role
            change_credentials(user, password=password, role=role)
            if before != role:
                action = "staff.role_change" if before in STAFF_ROLES else "staff.create"
                audit.record(None, action, f"staff:{user.id}", {"from": before, "to": role})
            click.echo(f"{email} is now {role} staff; its password was replaced and its sessions revoked")
