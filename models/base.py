"""The database proxy, the base model and time helpers shared by all models."""
import hashlib
import weakref
from datetime import datetime, timezone

import peewee
from peewee import DatabaseProxy, Model, PostgresqlDatabase, Value, fn

# Unbound: ``create_app`` binds it to the configured database.
db = DatabaseProxy()


def utcnow():
    """Naive UTC: every timestamp column holds UTC without an offset."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


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


def checkpoint_wal():
    """SQLite: copy the WAL into the database file and truncate it to zero
    bytes, so rows deleted since the last checkpoint leave no older copy in
    the WAL. True when it completed; a reader on an older snapshot makes it
    give up after the busy timeout."""
    busy, _frames, _copied = db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return busy == 0


def vacuum(table_names):
    """PostgreSQL: VACUUM the tables now, with index cleanup forced (PostgreSQL
    skips it when few rows died), so deleted rows and the index entries that
    name them go at once. VACUUM refuses to run in a transaction; peewee's
    connections are in autocommit between transactions. It is paced like
    autovacuum (a manual VACUUM is not, by default) to spare live queries."""
    db.execute_sql("SET vacuum_cost_delay = '2ms'")
    try:
        db.execute_sql("VACUUM (INDEX_CLEANUP ON) " + ", ".join(f'"{name}"' for name in table_names))
    finally:
        db.execute_sql("RESET vacuum_cost_delay")  # the connection goes back to the pool


def lock_value(kind, value):
    """Until the transaction ends, writers of one unique value (a push
    token, a user's set of devices) run one at a time, so a check for the
    value and the write after it cannot interleave with another writer's:
    a race answers as the serial case does, without the database refusing
    an insert (its error would log the value). A PostgreSQL advisory lock
    on a digest of the value; SQLite's write transaction already serialises
    every writer."""
    if is_postgres():
        digest = hashlib.blake2b(f"{kind}:{value}".encode(), digest_size=8).digest()
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (int.from_bytes(digest, "big", signed=True),))


def one_of(field, values):
    """``field IN (values)``; on PostgreSQL ``field = ANY(array)``, one
    parameter where peewee would render one per value (hundreds in a batch)."""
    values = list(values)
    if is_postgres():
        return field == fn.ANY(Value(values, unpack=False, converter=False))
    return field.in_(values)


def insert_rows(model, rows, columns, ignore_conflicts=False):
    """Many rows (dicts of ``columns``) in one statement whose text is built
    once: peewee's ``insert_many`` renders SQL for every value, which cost
    more than the database's work for a batch of 500. Values pass through
    each field's ``db_value``; fields left out get their defaults, as with
    ``insert_many``. ``ignore_conflicts`` skips rows that would break a
    unique constraint (and nothing else: a NULL in a NOT NULL column fails)."""
    if not rows:
        return
    fields = [model._meta.fields[name] for name in columns]
    defaults = [(field, default) for field, default in model._meta.defaults.items() if field.name not in columns]
    values = [(*(field.db_value(row[field.name]) for field in fields),
               *(field.db_value(default() if callable(default) else default) for field, default in defaults))
              for row in rows]  # a callable default (a uuid4, a clock) is called per row, as insert_many does
    fields += [field for field, _ in defaults]
    names = ", ".join(f'"{field.column_name}"' for field in fields)
    conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    sql = f'INSERT INTO "{model._meta.table_name}" ({names}) VALUES %s{conflict}'
    cursor = db.cursor()
    with peewee.__exception_wrapper__:  # driver errors as peewee's, like every other query
        if is_postgres():
            from psycopg2.extras import execute_values

            execute_values(cursor, sql, values, page_size=len(values))
        else:
            cursor.executemany(sql.replace("%s", "(" + ", ".join("?" * len(fields)) + ")"), values)


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


class Slot:
    """A named parameter of a ``Rendered`` query, filled on each run."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"Slot({self.name!r})"


def slot(name):
    """A value in a query that ``Rendered`` fills per run (passed through as given)."""
    return Value(Slot(name), converter=False)


class Rendered:
    """A query's SQL rendered once and run many times with ``slot`` values
    filled in: peewee's rendering of a large expression (the consent rules'
    SQL forms) costs several times what running it does. Several queries
    become one string of statements, one round trip on PostgreSQL, where
    the last one can also be a prepared statement (``prepare``: its name),
    planned once per connection instead of on every run."""

    def __init__(self, *queries, prepare=None):
        rendered = [query.sql() for query in queries]
        self.sql = "; ".join(sql for sql, _ in rendered)
        self.params = [param for _, params in rendered for param in params]
        self.name = prepare
        if prepare:
            *before, (last, last_params) = rendered
            numbered = last.split("%s")
            self.definition = f"PREPARE {prepare} AS " + "".join(
                f"{part}${n}" for n, part in enumerate(numbered[:-1], 1)) + numbered[-1]
            self.prepared_sql = "; ".join([*(sql for sql, _ in before),
                                           f"EXECUTE {prepare}({', '.join(['%s'] * len(last_params))})"])

    def bind(self, **values):
        return [values[p.name] if isinstance(p, Slot) else p for p in self.params]

    def execute(self, **values):
        """The cursor after running all statements (it holds the last one's rows)."""
        if not (self.name and is_postgres()):
            return db.execute_sql(self.sql, self.bind(**values))
        connection = db.connection()
        prepared = _prepared.setdefault(connection, set())
        if self.name not in prepared:
            db.execute_sql(self.definition)
            prepared.add(self.name)
        return db.execute_sql(self.prepared_sql, self.bind(**values))


_prepared = weakref.WeakKeyDictionary()  # connection -> names prepared on it
