"""``flask --app app <command>``: operations that are not HTTP routes."""
import logging

import click
from flask.cli import with_appcontext

from extensions import db
from models import User, write_transaction
from models.base import utcnow


@click.command("migrate")
@with_appcontext
def migrate_command():
    """Apply pending schema migrations."""
    from models.schema import migrate

    applied = migrate()
    click.echo("applied: " + ", ".join(applied) if applied else "nothing to apply")


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
    from security import change_credentials, hash_password

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


@click.command("worker")
@with_appcontext
@click.option("--workers", default=2, show_default=True, help="Worker threads.")
def worker_command(workers):
    """Run the task consumer in the foreground (periodic tasks included)."""
    from worker import huey

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    huey.create_consumer(workers=workers, worker_type="thread", periodic=True).run()


@click.command("verify-ledger")
@with_appcontext
def verify_ledger_command():
    """Recompute every consent-ledger chain; exit 1 naming the first entry that does not verify."""
    from consent import ledger

    with db.connection_context():
        report = ledger.verify()
    if not report.ok:
        click.echo(f"ledger does NOT verify: {report.failure}", err=True)
        raise SystemExit(1)
    click.echo(f"ledger verified: {report.entries} entries in {report.subjects} chains")


@click.command("purge")
@with_appcontext
def purge_command():
    """Delete locations and device reports past their retention; withdraw
    grants left stale past STALE_GRANT_GRACE_DAYS."""
    import reports

    with db.connection_context():
        counts = reports.purge_expired()
        lapsed = reports.lapse_stale_grants()
    for name, count in counts.items():
        click.echo(f"{name}: {count} deleted")
    click.echo(f"stale grants: {lapsed} withdrawn")


def register(app):
    for command in (migrate_command, create_admin_command, worker_command, verify_ledger_command, purge_command):
        app.cli.add_command(command)
