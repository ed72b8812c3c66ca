"""Accounts and login sessions."""
import datetime
import uuid

from peewee import CharField, DateField, DateTimeField, ForeignKeyField, Model, UUIDField


def up(migrator, db):
    class User(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        email = CharField(max_length=254)
        email_normalized = CharField(max_length=254, unique=True)
        password_hash = CharField(max_length=255)
        role = CharField(max_length=16, default="user")
        birth_date = DateField(null=True)
        phone = CharField(max_length=32, null=True)
        ledger_subject = UUIDField(unique=True, default=uuid.uuid4)
        created_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            database = db
            table_name = "user"

    class AuthSession(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        user = ForeignKeyField(User, on_delete="CASCADE")
        refresh_jti = CharField(max_length=64)
        created_at = DateTimeField()
        refreshed_at = DateTimeField(null=True)
        expires_at = DateTimeField(index=True)
        revoked_at = DateTimeField(null=True)
        revoked_reason = CharField(max_length=32, null=True)

        class Meta:
            database = db
            table_name = "auth_session"

    db.create_tables([User, AuthSession])


def down(migrator, db):
    db.execute_sql('DROP TABLE IF EXISTS auth_session')
    db.execute_sql('DROP TABLE IF EXISTS "user"')
