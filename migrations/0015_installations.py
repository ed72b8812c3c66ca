"""Installations: the app before sign-in is a consent subject of its own, a
``user`` row of ``kind`` 'installation' with its ``installation_id`` and no
email or password (those become nullable; the unique index on
``email_normalized`` still holds for accounts, several NULLs being allowed);
``last_seen_at`` for its retention. ``ledger_entry.adopted_from``: the hash
of an installation's entry that an account's entry adopted at a merge.

SQLite rebuilds ``user`` to drop the NOT NULLs: with foreign keys on, dropping
the old table would cascade into every table that references it, so they are
off for the rebuild (outside a transaction, where the pragma takes effect)."""
from peewee import SQL, CharField, DateTimeField, PostgresqlDatabase

atomic = False


def up(migrator, db):
    postgres = isinstance(db, PostgresqlDatabase)
    if not postgres:
        db.execute_sql("PRAGMA foreign_keys = OFF")
    try:
        with db.atomic():
            migrator.migrate(
                migrator.add_column("user", "kind", CharField(
                    max_length=16, default="account", constraints=[SQL("DEFAULT 'account'")])),
                migrator.add_column("user", "installation_id", CharField(max_length=128, null=True)),
                migrator.add_column("user", "last_seen_at", DateTimeField(null=True)),
                migrator.drop_not_null("user", "email"),
                migrator.drop_not_null("user", "email_normalized"),
                migrator.drop_not_null("user", "password_hash"),
                migrator.add_index("user", ("installation_id",), True),
                migrator.add_index("user", ("kind", "last_seen_at"), False),
                migrator.add_column("ledger_entry", "adopted_from", CharField(max_length=64, null=True)),
            )
    finally:
        if not postgres:
            db.execute_sql("PRAGMA foreign_keys = ON")


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column("ledger_entry", "adopted_from"),
        migrator.drop_index("user", "user_kind_last_seen_at"),
        migrator.drop_index("user", "user_installation_id"),
        migrator.drop_column("user", "last_seen_at"),
        migrator.drop_column("user", "installation_id"),
        migrator.drop_column("user", "kind"),
    )
