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
def create_admin_command(email, password):
    """Create an administrator, or promote an existing account."""
    from security import hash_password

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
                created_at=utcnow(),
            )
            click.echo(f"created administrator {email}")
        else:
            user.role = "admin"
            user.password_hash = hash_password(password)
            user.save()
            click.echo(f"{email} is now an administrator")


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
    """Delete locations and device reports past their retention."""
    import reports

    with db.connection_context():
        counts = reports.purge_expired()
    for name, count in counts.items():
        click.echo(f"{name}: {count} deleted")


def register(app):
    for command in (migrate_command, create_admin_command, worker_command, verify_ledger_command, purge_command):
        app.cli.add_command(command)
