"""A sortable app version on devices, so audience filters run in SQL."""
from peewee import BigIntegerField


def _number(text):
    parts = [min(int(part), 9999) for part in str(text).split(".")[:4] if part.isdigit()]
    parts += [0] * (4 - len(parts))
    return ((parts[0] * 10000 + parts[1]) * 10000 + parts[2]) * 10000 + parts[3]


def up(migrator, db):
    migrator.migrate(migrator.add_column("device", "app_version_num", BigIntegerField(default=0)))
    for device_id, version in db.execute_sql("SELECT id, app_version FROM device").fetchall():
        db.execute_sql("UPDATE device SET app_version_num = %s WHERE id = %s" % (db.param, db.param),
                       (_number(version), device_id))
    migrator.migrate(migrator.add_index("device", ("app_version_num",), False))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("device", "app_version_num"))
