"""Flask-Limiter's Redis storage, with the ``X-RateLimit-*`` headers answered
from the round trip that counted the request.

limits' fixed window costs three Redis round trips a request: the increment,
then ``GET`` and ``TTL`` for the headers. Here the increment's script returns
the window's time to live too, and the request keeps what it counted (in
``flask.g``), so the headers need no further trip. Anything else (a check
before a conditional deduction, another request) still reads Redis.
Selected by ``core.config.derived_settings`` as ``counted+<REDIS_URL>``.
"""
import time

from flask import g, has_request_context
from limits.storage import RedisStorage


class CountedRedisStorage(RedisStorage):
    STORAGE_SCHEME = ["counted+redis", "counted+rediss", "counted+redis+unix"]

    SCRIPT_INCR_EXPIRE_TTL = """
local amount = tonumber(ARGV[2])
local current = redis.call("incrby", KEYS[1], amount)
if tonumber(current) == amount then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {current, redis.call("ttl", KEYS[1])}
"""

    def __init__(self, uri, **options):
        super().__init__(uri.split("+", 1)[1], **options)

    def initialize_storage(self, uri):
        super().initialize_storage(uri)
        self.lua_incr_expire_ttl = self.get_connection().register_script(self.SCRIPT_INCR_EXPIRE_TTL)

    def incr(self, key, expiry, amount=1):
        count, ttl = self.lua_incr_expire_ttl([self.prefixed_key(key)], [expiry, amount])
        if has_request_context():
            g.setdefault("counted_windows", {})[key] = (int(count), max(int(ttl), 0) + time.time())
        return int(count)

    @staticmethod
    def _counted(key):
        return g.get("counted_windows", {}).get(key) if has_request_context() else None

    def get(self, key):
        counted = self._counted(key)
        return counted[0] if counted else super().get(key)

    def get_expiry(self, key):
        counted = self._counted(key)
        return counted[1] if counted else super().get_expiry(key)
