"""Helpers for tests that change consents through the API."""
from datetime import date

from tests.conftest import bearer, register


def put_consents(client, headers, **consents):
    response = client.put("/v1/me/consents", json={"consents": consents}, headers=headers)
    assert response.status_code == 200, response.json
    return response.json["consents"]


def years_ago(years, today=None):
    today = today or date.today()
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return today.replace(year=today.year - years, day=28)


def new_user(client, **extra):
    session = register(client, **extra)
    session["headers"] = bearer(session["access_token"])
    return session


def assert_summary_follows_consent():
    """``consent_summary`` holds exactly ``consent`` pivoted per user: what
    audiences and statistics read must be what the engine wrote."""
    from consent.catalogue import KEYS
    from models import Consent, ConsentSummary

    expected = {}
    for row in Consent.select():
        expected.setdefault(str(row.user_id), {})[row.permission] = (row.granted, row.policy_id, row.refused)
    actual = {}
    for row in ConsentSummary.select():
        choices = {key: (getattr(row, f"{key}_granted"), getattr(row, f"{key}_policy"), getattr(row, f"{key}_refused"))
                   for key in KEYS}
        actual[str(row.user_id)] = {key: value for key, value in choices.items() if value != (None, None, None)}
    assert actual == expected
