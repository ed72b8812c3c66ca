"""An index for a user's locations newest first by capture time (``GET /v1/me/locations``)."""


def up(migrator, db):
    migrator.migrate(migrator.add_index("location", ("user_id", "captured_at", "id"), False))


def down(migrator, db):
    migrator.migrate(migrator.drop_index("location", "location_user_id_captured_at_id"))
