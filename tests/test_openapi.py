"""The OpenAPI document is generated from the schemas and valid (issue 2, acceptance 6)."""
from openapi_spec_validator import validate


def test_openapi_document_is_valid_openapi_3(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json
    assert spec["openapi"].startswith("3.")
    validate(spec)


def test_openapi_documents_bearer_auth_and_the_error_envelope(client):
    spec = client.get("/openapi.json").json
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    error = spec["components"]["schemas"]["ErrorEnvelope"]
    assert error["required"] == ["error"]
    logout = spec["paths"]["/v1/auth/logout"]["post"]
    assert logout["security"] == [{"bearerAuth": []}]
    assert "401" in logout["responses"]
    register = spec["paths"]["/v1/auth/register"]["post"]
    assert "security" not in register
    assert "422" in register["responses"]


def test_docs_ui_is_served(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert b"swagger" in response.data.lower()
