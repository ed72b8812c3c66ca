"""Configuration layers and production secrets (issue 2, acceptance 7)."""
import base64
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app import create_app
from consent import receipts
from core.config import ConfigError


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("SECRET_KEY", "JWT_SECRET_KEY", "APP_ENV", "DATABASE_URL", "RECEIPT_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def production(tmp_path, **config):
    return {"APP_ENV": "production", "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "sqlite:///:memory:", **config}


def test_production_without_jwt_secret_refuses_to_start(tmp_path, clean_env):
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY"):
        create_app(production(tmp_path, SECRET_KEY="s" * 40))


def test_production_without_secret_key_refuses_to_start(tmp_path, clean_env):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app(production(tmp_path, JWT_SECRET_KEY="j" * 40))


def test_production_with_short_secret_refuses_to_start(tmp_path, clean_env):
    clean_env.setenv("JWT_SECRET_KEY", "too-short")
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY must be at least 32 bytes"):
        create_app(production(tmp_path, SECRET_KEY="s" * 40))


def pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_production_with_secrets_from_environment_starts(tmp_path, clean_env):
    clean_env.setenv("SECRET_KEY", "s" * 40)
    clean_env.setenv("JWT_SECRET_KEY", "j" * 40)
    clean_env.setenv("RECEIPT_SIGNING_KEY", pem(Ed25519PrivateKey.generate()))
    app = create_app(production(tmp_path))
    assert app.config["JWT_SECRET_KEY"] == "j" * 40
    assert not os.path.exists(tmp_path / "jwt_secret_key")
    assert not os.path.exists(tmp_path / "receipt_signing_key.pem")


def test_production_without_receipt_signing_key_refuses_to_start(tmp_path, clean_env):
    with pytest.raises(ConfigError, match="RECEIPT_SIGNING_KEY is required"):
        create_app(production(tmp_path, SECRET_KEY="s" * 40, JWT_SECRET_KEY="j" * 40))


def test_development_generates_the_receipt_key_once_under_instance(tmp_path, clean_env):
    apps = [create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "sqlite:///:memory:"}) for _ in range(2)]
    kids = []
    for app in apps:
        with app.app_context():
            kids.append(receipts.public_jwk()["kid"])
    assert kids[0] == kids[1]
    assert oct(os.stat(tmp_path / "receipt_signing_key.pem").st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("form", ["text", "path"])
def test_receipt_key_is_pem_text_or_a_pem_files_path(tmp_path, clean_env, form):
    key = Ed25519PrivateKey.generate()
    value = pem(key)
    if form == "path":
        (tmp_path / "receipts.pem").write_text(value)
        value = str(tmp_path / "receipts.pem")
    app = create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "sqlite:///:memory:",
                      "RECEIPT_SIGNING_KEY": value})
    with app.app_context():
        x = receipts.public_jwk()["x"]
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert x == base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    assert not os.path.exists(tmp_path / "receipt_signing_key.pem")


@pytest.mark.parametrize("value,message", [
    ("/nowhere/receipts.pem", "cannot be read"),
    ("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", "Ed25519"),
    (pem(generate_private_key(SECP256R1())), "Ed25519"),
])
def test_unusable_receipt_key_refuses_to_start(tmp_path, clean_env, value, message):
    with pytest.raises(ConfigError, match=f"RECEIPT_SIGNING_KEY.*{message}"):
        create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "sqlite:///:memory:",
                    "RECEIPT_SIGNING_KEY": value})


def test_development_generates_secrets_once_under_instance(tmp_path, clean_env):
    first = create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "sqlite:///:memory:"})
    second = create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "sqlite:///:memory:"})
    assert len(first.config["JWT_SECRET_KEY"]) >= 32
    assert first.config["JWT_SECRET_KEY"] == second.config["JWT_SECRET_KEY"]
    assert first.config["SECRET_KEY"] != first.config["JWT_SECRET_KEY"]
    assert oct(os.stat(tmp_path / "jwt_secret_key").st_mode & 0o777) == "0o600"


def test_layers_defaults_then_environment_then_dict(tmp_path, clean_env):
    clean_env.setenv("LOCATION_RETENTION_DAYS", "30")
    clean_env.setenv("STATS_MIN_GROUP_SIZE", "20")
    app = create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "sqlite:///:memory:", "STATS_MIN_GROUP_SIZE": 5})
    assert app.config["PUSH_PROVIDER"] == "log"
    assert app.config["LOCATION_RETENTION_DAYS"] == 30
    assert app.config["STATS_MIN_GROUP_SIZE"] == 5


def test_default_database_is_sqlite_under_instance(tmp_path, clean_env):
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert app.config["DATABASE_URL"] == "sqlite:///" + str(tmp_path / "app.db")


def test_non_numeric_environment_value_names_the_variable(tmp_path, clean_env):
    clean_env.setenv("PORT", "eighty")
    with pytest.raises(ConfigError, match="PORT"):
        create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "sqlite:///:memory:"})
