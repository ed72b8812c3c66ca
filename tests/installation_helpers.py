"""Helpers for tests of installations: the app before sign-in."""
import uuid

from tests.conftest import bearer, remember


def new_installation(client, platform="android", app_version="3.12.0", installation_id=None):
    """A new installation through the API: its JSON, token and ready headers."""
    installation_id = installation_id or "inst-" + uuid.uuid4().hex
    remember("installation id", installation_id)
    response = client.post("/v1/installations", json={"installation_id": installation_id, "platform": platform,
                                                      "app_version": app_version})
    assert response.status_code == 201, response.json
    token = response.json["installation_token"]
    return {**response.json, "installation_id": installation_id, "token": token, "headers": bearer(token),
            "id": response.json["installation"]["id"]}


def put_installation_consents(client, installation, **consents):
    response = client.put("/v1/installation/consents", json={"consents": consents}, headers=installation["headers"])
    assert response.status_code == 200, response.json
    return response.json


def merging(installation):
    """The header that signs in from an installation."""
    return {"X-Installation-Token": installation["token"]}
