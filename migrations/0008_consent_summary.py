"""``consent`` pivoted into one row per user, for audiences and statistics
over millions of users; filled from the existing ``consent`` rows."""
import uuid

from peewee import BooleanField, ForeignKeyField, IntegerField, Model, UUIDField

PERMISSIONS = ("device_info", "location", "precise_location", "service_push", "marketing_push",
               "personalization", "partner_sharing", "usage_statistics")


def up(migrator, db):
    class User(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)

        class Meta:
            database = db
            table_name = "user"

    class ConsentSummary(Model):
        user = ForeignKeyField(User, primary_key=True, on_delete="CASCADE")

        class Meta:
            database = db
            table_name = "consent_summary"

    for key in PERMISSIONS:
        ConsentSummary._meta.add_field(f"{key}_granted", BooleanField(null=True))
        ConsentSummary._meta.add_field(f"{key}_policy", IntegerField(null=True))
    db.create_tables([ConsentSummary])

    names, picks = ["user_id"], ["user_id"]
    for key in PERMISSIONS:
        names += [f"{key}_granted", f"{key}_policy"]
        picks += [f"(MAX(CASE WHEN permission = '{key}' THEN (CASE WHEN granted THEN 1 ELSE 0 END) END) = 1)",
                  f"MAX(CASE WHEN permission = '{key}' THEN policy_id END)"]
    db.execute_sql(f"INSERT INTO consent_summary ({', '.join(names)}) "
                   f"SELECT {', '.join(picks)} FROM consent GROUP BY user_id")


def down(migrator, db):
    db.execute_sql("DROP TABLE IF EXISTS consent_summary")
