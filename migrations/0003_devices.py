"""Devices, device-report history, push tokens and locations."""
import uuid

from peewee import (
    BigAutoField, BooleanField, CharField, DateTimeField, DoubleField, ForeignKeyField, Model, UUIDField,
)


def up(migrator, db):
    class User(Model):
        id = UUIDField(primary_key=True)

        class Meta:
            database = db
            table_name = "user"

    class Device(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        user = ForeignKeyField(User, on_delete="CASCADE")
        installation_id = CharField(max_length=128)
        platform = CharField(max_length=16)
        app_version = CharField(max_length=32)
        model = CharField(max_length=64, null=True)
        manufacturer = CharField(max_length=64, null=True)
        os_name = CharField(max_length=64, null=True)
        os_version = CharField(max_length=64, null=True)
        carrier = CharField(max_length=64, null=True)
        resolution = CharField(max_length=16, null=True)
        locale = CharField(max_length=35, null=True)
        timezone = CharField(max_length=64, null=True)
        created_at = DateTimeField()
        last_seen_at = DateTimeField(index=True)

        class Meta:
            database = db
            table_name = "device"
            indexes = ((("user", "installation_id"), True),)

    class DeviceReport(Model):
        id = BigAutoField()
        device = ForeignKeyField(Device, on_delete="CASCADE")
        user = ForeignKeyField(User, on_delete="CASCADE")
        app_version = CharField(max_length=32, null=True)
        model = CharField(max_length=64, null=True)
        manufacturer = CharField(max_length=64, null=True)
        os_name = CharField(max_length=64, null=True)
        os_version = CharField(max_length=64, null=True)
        carrier = CharField(max_length=64, null=True)
        resolution = CharField(max_length=16, null=True)
        locale = CharField(max_length=35, null=True)
        timezone = CharField(max_length=64, null=True)
        created_at = DateTimeField(index=True)

        class Meta:
            database = db
            table_name = "device_report"
            indexes = ((("user", "id"), False),)

    class PushToken(Model):
        id = BigAutoField()
        device = ForeignKeyField(Device, on_delete="CASCADE", unique=True)
        token = CharField(max_length=4096, unique=True)
        provider = CharField(max_length=16)
        notifications_enabled = BooleanField()
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "push_token"

    class Location(Model):
        id = BigAutoField()
        device = ForeignKeyField(Device, on_delete="CASCADE")
        user = ForeignKeyField(User, on_delete="CASCADE")
        latitude = DoubleField()
        longitude = DoubleField()
        geohash = CharField(max_length=5, index=True)
        precision = CharField(max_length=12)
        accuracy_m = DoubleField(null=True)
        captured_at = DateTimeField(index=True)
        received_at = DateTimeField()

        class Meta:
            database = db
            table_name = "location"
            indexes = ((("device", "captured_at"), True), (("user", "id"), False))

    db.create_tables([Device, DeviceReport, PushToken, Location])


def down(migrator, db):
    for table in ("location", "push_token", "device_report", "device"):
        db.execute_sql(f"DROP TABLE IF EXISTS {table}")
