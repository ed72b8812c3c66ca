"""Signing in with email and password, for the API and the console alike:
the check itself and the rate limits around it, so that both doors count
the same failures against the same accounts."""
import hashlib

from flask import current_app

from auth.passwords import burn_password_check, password_matches
from core.extensions import client_address, limiter
from models import User

# One scope for both doors: failures at the console's sign-in and at
# POST /v1/auth/login add up instead of doubling an attacker's attempts.
LOGIN_SCOPE = "login"


def authenticate(email, password):
    """The account ``email`` names if ``password`` is its password, else
    None; an unknown address costs the time of a password check too."""
    user = User.by_email(email)
    if user is None:
        burn_password_check(password)
        return None
    return user if password_matches(user.password_hash, password) else None


def _pseudonym(email):
    """The counter's name for an account: the rate-limit storage (Redis)
    must not hold email addresses, and a keyed digest cannot be reversed by
    hashing a list of addresses."""
    key = current_app.config["SECRET_KEY"].encode()[:64]
    return hashlib.blake2b(email.encode("utf-8", "surrogatepass"), key=key, digest_size=16).hexdigest()


def account_key(email):
    """One account from one address: failures elsewhere must not lock its
    owner out, so an address is refused only the accounts it failed."""
    account = _pseudonym(User.normalize_email(email)) if isinstance(email, str) else "-"
    return f"login-account:{account}:{client_address()}"


def _login_failed(response):
    return response.status_code == 401


def login_limits(email_of):
    """Decorate a sign-in view (which answers 401 on a failure) with the
    login limits: per address, and per account and address, counting
    failures only. ``email_of()`` reads the email the request names."""
    def decorator(view):
        view = limiter.shared_limit(lambda: current_app.config["RATELIMIT_LOGIN_ACCOUNT"], LOGIN_SCOPE + "-account",
                                    key_func=lambda: account_key(email_of()), deduct_when=_login_failed)(view)
        return limiter.shared_limit(lambda: current_app.config["RATELIMIT_LOGIN"], LOGIN_SCOPE,
                                    deduct_when=_login_failed)(view)

    return decorator
