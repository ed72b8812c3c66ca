"""The OpenAPI document is generated from the schemas and valid (issue 2, acceptance 6)."""
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

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
    assert spec["components"]["responses"]["UNAUTHORIZED"]["headers"]["WWW-Authenticate"]["required"] is True
    register = spec["paths"]["/v1/auth/register"]["post"]
    assert "security" not in register
    assert "422" in register["responses"]


def test_docs_ui_is_served(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert b"swagger" in response.data.lower()


class AssetReferences(HTMLParser):
    """Every script, stylesheet, image and icon a page references."""

    ATTRIBUTES = {"script": "src", "link": "href", "img": "src"}

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        url = dict(attrs).get(self.ATTRIBUTES.get(tag))
        if url:
            self.urls.append(url)


def test_docs_page_loads_every_asset_from_the_app_itself(client):
    page = client.get("/docs")
    assert page.status_code == 200
    parser = AssetReferences()
    parser.feed(page.get_data(as_text=True))
    assert len(parser.urls) >= 3  # the stylesheet, the preset and the bundle
    for url in parser.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} points to another host"
        asset = client.get(urljoin("/docs", url))
        assert asset.status_code == 200, url
        assert len(asset.data) > 1000, url
