"""The database connection: SQLite with the pragmas the app relies on, or
PostgreSQL through a pool, and a connection per request."""
import time
import weakref
from urllib.parse import urlparse

from playhouse import db_url
from playhouse.pool import PooledPostgresqlDatabase


class PostgresPool(PooledPostgresqlDatabase):
    """peewee's pool, minus the ``SELECT 1`` it sends on every checkout when
    the connection came back idle moments ago: at thousands of requests a
    second that probe cost a round trip each. A connection that sat longer
    is still probed, and one that breaks mid-query is closed by psycopg2 and
    discarded at its next checkout."""

    TRUST_SECONDS = 2.0

    def __init__(self, *args, **kwargs):
        self._returned = weakref.WeakKeyDictionary()  # connection -> when it was checked in
        super().__init__(*args, **kwargs)

    def _is_closed(self, conn):  # called under the pool's lock
        returned = self._returned.pop(conn, None)
        if (not conn.closed and returned is not None and time.monotonic() - returned < self.TRUST_SECONDS
                and self._adapter.txn_status(conn) == self._adapter.txn_idle):
            return False
        return super()._is_closed(conn)

    def _close(self, conn, close_conn=False):
        with self._pool_lock:
            if not close_conn:
                self._returned[conn] = time.monotonic()
            super()._close(conn, close_conn)


def connect_database(url, pool_size, connect_timeout=5):
    scheme = urlparse(url).scheme
    if scheme.startswith("sqlite"):
        return db_url.connect(
            url,
            pragmas={"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 15000, "synchronous": "normal",
                     "secure_delete": 1},  # deleted rows are zeroed, not left in free pages (erasure)
            timeout=15,
            check_same_thread=False,
            returning_clause=True,
        )
    if scheme in ("postgres", "postgresql"):
        db_url.register_database(PostgresPool, "postgresql+pool")  # on use, not on import
        url = url.replace(scheme + "://", "postgresql+pool://", 1)
        # No JIT: it compiled the audience preview for 2 of its 3.5 s on a
        # million users, and the other queries here are too short to repay it.
        return db_url.connect(url, max_connections=pool_size, stale_timeout=300, timeout=10,
                              connect_timeout=connect_timeout, options="-c jit=off")
    return db_url.connect(url)


def register_connection_hooks(app, database):
    """A connection per request (peewee's "Framework integration"): opened
    before the view, closed after the response."""

    def open_connection():
        database.connect(reuse_if_open=True)

    def close_connection(_exc):
        if not database.is_closed():
            database.close()

    app.before_request(open_connection)
    app.teardown_request(close_connection)
