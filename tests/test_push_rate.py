"""PUSH_RATE_PER_MINUTE caps what the senders hand to the push service."""
from push.sender import RateLimit


def test_the_rate_limit_refuses_messages_beyond_the_budget(make_app):
    app = make_app(PUSH_RATE_PER_MINUTE=5)
    limit = RateLimit(app.config)
    limit.acquire(3)
    limit.acquire(2)  # exactly the budget: no wait
    assert not limit.limiter.test(limit.limit, "push-messages")  # a sixth message would wait


def test_the_default_stays_under_the_fcm_quota(app):
    assert app.config["PUSH_RATE_PER_MINUTE"] < 600_000
    limit = RateLimit(app.config)
    limit.acquire(500)
    assert limit.limiter.test(limit.limit, "push-messages")
