"""``user.self_registered``: whether the account came from ``/v1/auth/register``
(``create-admin`` will not promote one without ``--promote-existing``);
``auth_session.previous_refresh_jti``: the refresh token rotated last, honoured
for ``REFRESH_REUSE_GRACE_SECONDS`` so that concurrent refreshes do not revoke
the session. Existing users: only ``create-admin`` ever made admins, so every
``user`` row was self-registered."""
from peewee import SQL, BooleanField, CharField, Model


def up(migrator, db):
    class User(Model):
        role = CharField(max_length=16)
        self_registered = BooleanField(default=True)

        class Meta:
            database = db
            table_name = "user"

    migrator.migrate(
        # a server default too: bulk loaders (bench/seed.py's COPY) name only the columns they fill
        migrator.add_column("user", "self_registered", BooleanField(default=True, constraints=[SQL("DEFAULT TRUE")])),
        migrator.add_column("auth_session", "previous_refresh_jti", CharField(max_length=64, null=True)),
    )
    User.update(self_registered=False).where(User.role != "user").execute()


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column("auth_session", "previous_refresh_jti"),
        migrator.drop_column("user", "self_registered"),
    )
