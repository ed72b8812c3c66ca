"""peewee models and their queries."""
from models.account import AuthSession, User
from models.base import BaseModel, db, is_postgres, utcnow, write_transaction

ALL_MODELS = [User, AuthSession]

__all__ = ["ALL_MODELS", "AuthSession", "BaseModel", "User", "db", "is_postgres", "utcnow", "write_transaction"]
