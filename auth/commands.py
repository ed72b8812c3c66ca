"""``flask --app app create-admin``: the operator's way to an administrator account."""
import click
from flask.cli import with_appcontext

from auth.passwords import hash_password
from auth.sessions import change_credentials
from models import User, db, write_transaction
from models.base import utcnow


@click.command("create-admin")
@with_appcontext
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--promote-existing", is_flag=True,
              help="Also promote an account that was registered through the app.")
def create_admin_command(email, password, promote_existing):
    """Create an administrator, or reset one's password. Promoting an
    account registered through the app needs --promote-existing: whoever
    registered the address first may not be the operator. Either way every
    session of the account is revoked."""
    if len(password) < 10:
        raise click.BadParameter("at least 10 characters", param_hint="--password")
    with db.connection_context(), write_transaction():
        user = User.by_email(email)
        if user is None:
            User.create(
                email=email.strip(),
                email_normalized=User.normalize_email(email),
                password_hash=hash_password(password),
                role="admin",
                self_registered=False,
                created_at=utcnow(),
            )
            click.echo(f"created administrator {email}")
        elif user.self_registered and not user.is_admin and not promote_existing:
            raise click.ClickException(
                f"{email} is an account registered through the app, not made by create-admin; "
                "nothing was changed. Check who owns it, then pass --promote-existing to make it "
                "an administrator (its password is replaced and its sessions are revoked)."
            )
        else:
            change_credentials(user, password=password, role="admin")
            click.echo(f"{email} is now an administrator; its password was replaced and its sessions revoked")
