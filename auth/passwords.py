"""Password hashing (argon2id, with the app's cost settings)."""
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app


def _hasher():
    config = current_app.config
    return PasswordHasher(
        time_cost=config["PASSWORD_HASH_TIME_COST"], memory_cost=config["PASSWORD_HASH_MEMORY_KIB"]
    )


def hash_password(password):
    return _hasher().hash(password)


def password_matches(password_hash, password):
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def burn_password_check(password):
    """Spend the time a real check costs, so that an unknown email cannot be
    told from a wrong password by timing."""
    _hasher().hash(password)
