"""Where revoked sessions are looked up: the database alone, or Redis with a
copy in each process.

With Redis, every revocation is written to the database, set as a key in
Redis (kept as long as a refresh token lives) and published. Each process
keeps the revoked session ids it has seen in memory, filled from the keys
when it subscribes and from the messages after, so that checking a token
costs no round trip. While that copy cannot be known complete (before the
subscription is confirmed, or after it was lost, until it is confirmed and
the keys read again), the check asks Redis, as it always did.

Redis is a cache of the database, never the truth: a session not known
revoked is looked up in the database the first time a process sees it
(and again a minute later), which also checks that it belongs to the
token's user. A key lost to ``FLUSHDB`` or eviction revives nothing.
"""
import logging
import os
import threading
import time
import uuid

from models import AuthSession, User

log = logging.getLogger(__name__)


class DatabaseRevocations:
    """Revocations as ``auth_session.revoked_at``; a token is live while its
    session row exists and is not revoked."""

    def revoke(self, session_ids, reason):
        return AuthSession.revoke(session_ids, reason)

    def live_user(self, payload, row=True):
        return AuthSession.active_user(payload.get("sid"), payload.get("sub"))


class RedisRevocations(DatabaseRevocations):
    """Revocations written to the database and to Redis, read from this
    process's copy (``RevokedSessions``) or, while that is not complete,
    from Redis. Redis only speeds the check up: a session this process has
    not seen revoked is looked up in the database once (``LiveSessions``),
    so a lost key cannot revive a token, and its ``sid`` must belong to its
    ``sub``."""

    PREFIX = "revoked-session:"

    def __init__(self, client, ttl_seconds):
        self.client = client
        self.ttl = ttl_seconds
        self.channel = f"{self.PREFIX}{client.connection_pool.connection_kwargs.get('db', 0)}"
        self.known = RevokedSessions.shared(client, self.PREFIX, self.channel, ttl_seconds)
        self.live = LiveSessions()

    def revoke(self, session_ids, reason):
        session_ids = [str(sid) for sid in session_ids]
        count = super().revoke(session_ids, reason)
        pipe = self.client.pipeline()
        for sid in session_ids:
            pipe.set(self.PREFIX + sid, reason, ex=self.ttl)
            pipe.publish(self.channel, sid)
        pipe.execute()
        self.known.add(session_ids)
        self.live.forget(session_ids)
        return count

    def is_revoked(self, session_id):
        revoked = self.known.contains(session_id)
        if revoked is None:
            revoked = bool(self.client.exists(self.PREFIX + session_id))
        return revoked

    def live_user(self, payload, row=True):
        sid, sub = str(payload.get("sid")), payload.get("sub")
        if self.is_revoked(sid):
            return None
        user_id = self.live.user_of(sid)
        if user_id is None:
            user = AuthSession.active_user(sid, sub)
            if user is None:
                if not AuthSession.is_live(sid):  # not merely another user's: remember it, as a revocation
                    self.known.add([sid])
                return None
            user_id = self.live.add(sid, user.id)
            if row:
                return user
        if str(user_id) != str(sub):
            return None
        if not row:
            return UserRef.of(sub)
        return User.get_or_none(User.id == user_id)


class LiveSessions:
    """Sessions this process found live in the database, with their user, so
    that only a session's first token in each process costs a query. An
    entry is trusted for ``SECONDS`` (a revocation whose message and key were
    both lost is honoured after that at the latest); at most ``SIZE`` are kept."""

    SECONDS = 60.0
    SIZE = 100_000

    def __init__(self):
        self._entries = {}  # session id -> (user id, time.monotonic() until which it is trusted)
        self._lock = threading.Lock()

    def user_of(self, session_id):
        entry = self._entries.get(session_id)
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]

    def add(self, session_id, user_id):
        with self._lock:
            if len(self._entries) >= self.SIZE:
                del self._entries[next(iter(self._entries))]  # the oldest
            self._entries[session_id] = (user_id, time.monotonic() + self.SECONDS)
        return user_id

    def forget(self, session_ids):
        with self._lock:
            for sid in session_ids:
                self._entries.pop(sid, None)


class UserRef:
    """The token's user on a route that needs only its id (``auth(load_user=False)``):
    no row is read. ``security.user_row`` reads it when the route turns out to need it."""

    __slots__ = ("id",)

    def __init__(self, user_id):
        self.id = user_id

    @classmethod
    def of(cls, subject):
        try:
            return cls(uuid.UUID(str(subject)))
        except ValueError:
            return None


class RevokedSessions:
    """This process's copy of the revoked session ids in Redis, kept by a
    daemon thread subscribed to ``channel``. An id stays in the copy as long
    as its key lives in Redis at most (``ttl``), then is forgotten."""

    PING_SECONDS = 5.0
    RETRY_SECONDS = 1.0
    MAX_RETRY_SECONDS = 30.0
    _shared = {}
    _shared_lock = threading.Lock()

    def __init__(self, client, prefix, channel, ttl):
        self.client, self.prefix, self.channel, self.ttl = client, prefix, channel, ttl
        self._until = {}  # session id -> time.time() after which its key has expired in Redis
        self._ready = False
        self._pid = None
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, client, prefix, channel, ttl):
        """One copy per process for each Redis database and channel."""
        # The server and database, not the client's whole repr: that holds
        # per-client objects, and a copy (and its thread) per client is a leak.
        options = client.connection_pool.connection_kwargs
        key = (options.get("host"), options.get("port"), options.get("path"), options.get("db", 0), prefix, channel)
        with cls._shared_lock:
            if key not in cls._shared:
                cls._shared[key] = cls(client, prefix, channel, ttl)
            return cls._shared[key]

    def contains(self, session_id):
        """True or False when the copy is complete, None when Redis must be asked."""
        self._start()
        if not self._ready:
            return None
        until = self._until.get(session_id)
        return until is not None and until > time.time()

    def add(self, session_ids):
        until = time.time() + self.ttl
        with self._lock:
            for sid in session_ids:
                self._until[sid] = until

    def _start(self):
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()  # a forked child starts its own subscriber
            self._ready = False
            threading.Thread(target=self._follow, name="revoked-sessions", daemon=True).start()

    def _follow(self):
        delay = self.RETRY_SECONDS
        while True:
            started = time.monotonic()
            try:
                self._subscribe_and_listen()
            except Exception as error:  # noqa: BLE001 - any failure: ask Redis until subscribed again
                # One line per outage, no traceback: a Redis that stays down
                # must not fill the log (formatting tracebacks in a thread
                # that retries forever also races the main thread's parser).
                if delay == self.RETRY_SECONDS:
                    log.warning("lost the revocation subscription (%s); checking tokens against Redis",
                                type(error).__name__)
            self._ready = False
            if time.monotonic() - started > self.PING_SECONDS:
                delay = self.RETRY_SECONDS  # it was up: a new outage starts from the first delay
            time.sleep(delay)
            delay = min(delay * 2, self.MAX_RETRY_SECONDS)

    def _subscribe_and_listen(self):
        pubsub = self.client.pubsub()
        try:
            pubsub.subscribe(self.channel)
            self._until_confirmed(pubsub)
            keys = [key.decode() if isinstance(key, bytes) else key
                    for key in self.client.scan_iter(match=self.prefix + "*", count=1000)]
            self.add([key[len(self.prefix):] for key in keys])
            self._ready = True
            answered = pinged = time.monotonic()
            while True:
                message = pubsub.get_message(timeout=1.0)
                now = time.monotonic()
                if message and message["type"] == "message":
                    data = message["data"]
                    self.add([data.decode() if isinstance(data, bytes) else data])
                elif message and message["type"] == "pong":
                    answered = now
                if now - pinged >= self.PING_SECONDS:
                    pubsub.ping()
                    pinged = now
                    self._forget_expired()
                if now - answered > 2 * self.PING_SECONDS + 1:
                    raise ConnectionError("the revocation subscription stopped answering pings")
        finally:
            self._ready = False
            pubsub.close()

    def _until_confirmed(self, pubsub):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=1.0)
            if message and message["type"] == "subscribe":
                return
        raise ConnectionError("Redis did not confirm the revocation subscription")

    def _forget_expired(self):
        now = time.time()
        with self._lock:
            for sid in [sid for sid, until in self._until.items() if until <= now]:
                del self._until[sid]
