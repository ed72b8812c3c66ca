"""The staff audit log (``audit_entry``): append-only and hash-chained. On
PostgreSQL a trigger refuses UPDATE and DELETE of its rows; SQLite gets the
same refusal from two triggers."""
from peewee import BigIntegerField, CharField, DateTimeField, Model, PostgresqlDatabase, TextField, UUIDField


def up(migrator, db):
    class AuditEntry(Model):
        seq = BigIntegerField(primary_key=True)
        actor_id = UUIDField(null=True)
        actor_email = CharField(max_length=254, null=True)
        actor_role = CharField(max_length=16, null=True)
        action = CharField(max_length=40)
        target = CharField(max_length=120, null=True)
        details = TextField(null=True)
        request_id = CharField(max_length=64, null=True)
        created_at = DateTimeField()
        prev_hash = CharField(max_length=64)
        hash = CharField(max_length=64)

        class Meta:
            database = db
            table_name = "audit_entry"
            indexes = (
                (("actor_id", "seq"), False),
                (("action", "seq"), False),
                (("target", "seq"), False),
            )

    db.create_tables([AuditEntry])
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql(
            "CREATE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'audit_entry is append-only'; END $$")
        db.execute_sql(
            "CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry "
            "FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()")
    else:
        for event in ("UPDATE", "DELETE"):
            db.execute_sql(
                f"CREATE TRIGGER audit_entry_no_{event.lower()} BEFORE {event} ON audit_entry "
                "BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END")


def down(migrator, db):
    db.execute_sql("DROP TABLE IF EXISTS audit_entry")
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql("DROP FUNCTION IF EXISTS audit_entry_append_only()")
