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
