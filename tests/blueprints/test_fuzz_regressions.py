"""Inputs the fuzz found mishandled, kept as regression tests."""
import pytest


@pytest.mark.parametrize("path", ["/v1/me/locations?=false", "/v1/me/consents/history?=false",
                                  "/v1/me/locations?limt=5"])
def test_unknown_query_parameters_are_refused(client, user, path):
    response = client.get(path, headers=user["headers"])
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error"


def test_oversized_policy_text_is_refused_with_413(client, admin):
    response = client.post("/v1/admin/policies", headers=admin["headers"], json={
        "version": "9", "text": "\u00bf" * 600_000, "changed_permissions": []})
    assert response.status_code == 413
    assert response.json["error"]["code"] == "payload_too_large"
