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


def _operations(spec):
    methods = ("get", "put", "post", "delete", "patch")
    return [(f"{method.upper()} {path}", operation) for path, item in spec["paths"].items()
            for method, operation in item.items() if method in methods]


def _walk(node, trail=""):
    """Every (place, schema object) in ``node``, nested ones included."""
    if isinstance(node, dict):
        yield trail, node
        for key, value in node.items():
            yield from _walk(value, f"{trail}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{trail}/{index}")


def _schema_names(node):
    return {value.rsplit("/", 1)[1] for _place, item in _walk(node) for key, value in item.items()
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/")}


def _reachable(spec, names):
    schemas, seen, todo = spec["components"]["schemas"], set(), list(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_schema_names(schemas[name]))
    return seen


def test_every_operation_has_a_unique_operation_id(client):
    spec = client.get("/openapi.json").json
    ids = {label: operation.get("operationId") for label, operation in _operations(spec)}
    assert len(ids) >= 40
    assert all(isinstance(value, str) and value for value in ids.values()), [k for k, v in ids.items() if not v]
    assert len(set(ids.values())) == len(ids)
    assert ids["POST /v1/auth/register"] == "auth_register"  # derived from the endpoint: stable across releases


def test_no_object_is_documented_with_string_lengths(client):
    spec = client.get("/openapi.json").json
    for place, item in _walk(spec):
        if item.get("type") == "object" or "additionalProperties" in item or "properties" in item:
            assert not {"minLength", "maxLength"} & set(item), place
    consents = spec["components"]["schemas"]["ConsentUpdate"]["properties"]["consents"]
    assert consents["minProperties"] == 1 and consents["maxProperties"] >= 8


def test_no_nested_object_may_be_a_free_object_instead(client):
    spec = client.get("/openapi.json").json
    for place, item in _walk(spec):
        for choice in item.get("anyOf", []) + item.get("oneOf", []):
            assert choice.get("type") != "object" or choice.get("properties"), place
    audience = spec["components"]["schemas"]["Audience"]["properties"]["area"]
    assert audience["allOf"] == [{"$ref": "#/components/schemas/Area"}] and audience["nullable"] is True
    batch = spec["components"]["schemas"]["LocationBatch"]["properties"]["locations"]
    assert batch["items"] == {"$ref": "#/components/schemas/LocationIn"}


def test_answers_list_the_fields_they_always_carry(client):
    spec = client.get("/openapi.json").json
    answers, requests = set(), set()
    for _label, operation in _operations(spec):
        for status, response in operation["responses"].items():
            answers |= _schema_names(response) if status.startswith("2") else set()
        requests |= _schema_names({key: value for key, value in operation.items() if key != "responses"})
    schemas = spec["components"]["schemas"]
    answered = _reachable(spec, answers) - _reachable(spec, requests)  # a request's schema keeps its own
    assert {"Session", "Device", "Campaign", "Counters", "Policy", "Export"} <= answered
    for name in answered:
        properties = schemas[name].get("properties", {})
        if properties:
            assert schemas[name].get("required"), f"{name} lists no required field"
    assert set(schemas["Device"]["required"]) == set(schemas["Device"]["properties"])
    assert "push" in schemas["Device"]["required"] and "counters" in schemas["Campaign"]["required"]
    assert "errors" not in schemas["BatchItemResult"]["required"]  # only a rejected item has errors


def test_the_export_schema_describes_every_section(client, user):
    spec = client.get("/openapi.json").json
    document = spec["paths"]["/v1/me/export"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    export = spec["components"]["schemas"][document["$ref"].rsplit("/", 1)[1]]
    answer = client.get("/v1/me/export", headers=user["headers"]).json
    assert set(export["properties"]) == set(answer) == set(export["required"])
    for name, section in export["properties"].items():
        assert _schema_names(section) or section.get("type") in ("integer", "string"), name
        assert section.get("type") != "array" or "$ref" in section["items"], name


def test_the_installation_export_schema_describes_its_sections_and_profile(client):
    from tests.installation_helpers import new_installation

    installation = new_installation(client)
    spec = client.get("/openapi.json").json
    document = spec["paths"]["/v1/installation/export"]["get"]["responses"]["200"]["content"]["application/json"]
    export = spec["components"]["schemas"][document["schema"]["$ref"].rsplit("/", 1)[1]]
    answer = client.get("/v1/installation/export", headers=installation["headers"]).json
    assert set(export["properties"]) == set(answer) == set(export["required"])
    profile = spec["components"]["schemas"][next(iter(_schema_names(export["properties"]["profile"])))]
    assert set(profile["properties"]) == set(answer["profile"]) == set(profile["required"])
