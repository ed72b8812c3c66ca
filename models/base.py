"""The database proxy, the base model and time helpers shared by all models."""
from datetime import datetime, timezone

from peewee import Model, PostgresqlDatabase

from extensions import db


def utcnow():
    """Naive UTC: every timestamp column holds UTC without an offset."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def to_naive_utc(value):
    if value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def is_postgres():
    return isinstance(db.obj, PostgresqlDatabase)


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


def write_transaction():
    """A transaction that takes SQLite's write lock up front, so that two
    writers never deadlock upgrading a read lock; plain BEGIN elsewhere."""
    if is_postgres():
        return db.atomic()
    return db.atomic("IMMEDIATE")


def keyset_page(query, field, after=None, limit=50, descending=True):
    """One page of ``query`` ordered by the unique ``field``, starting after
    the key ``after``; returns (rows, key of the last row if more follow)."""
    if after is not None:
        query = query.where(field < after if descending else field > after)
    rows = list(query.order_by(field.desc() if descending else field.asc()).limit(limit + 1))
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, getattr(rows[-1], field.name)
    return rows, None
