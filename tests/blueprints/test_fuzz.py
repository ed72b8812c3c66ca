"""Property-based fuzz of every operation in /openapi.json with Schemathesis
(issue 7): as a user and as an admin (and as an installation, on the
operations an installation's token serves), with schema-valid and
schema-invalid input. No 5xx, every response as documented, every error the envelope."""
import itertools
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from tests.conftest import bearer
from tests.device_helpers import add_device
from tests.installation_helpers import new_installation
from tests.push_helpers import create_campaign
from tests.routes import openapi_operations

OPERATIONS = openapi_operations()
# What an installation's token serves: its own routes, the devices', and creating one.
INSTALLATION_OPERATIONS = [label for label in OPERATIONS
                           if " /v1/installation" in label or " /v1/devices" in label]
EXAMPLES = 40  # per operation, role and mode: a few minutes in all
TALLY = Counter()


@schemathesis.check
def error_envelope(ctx, response, case):
    """Every error answer is {"error": {"code", "message", "details"}}."""
    if response.status_code < 400:
        return None
    body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(error, dict) and isinstance(error.get("code"), str) and isinstance(error.get("message"), str)
            and isinstance(error.get("details"), dict)):
        raise AssertionError(f"not the error envelope: {response.text[:200]}")
    return True


@schemathesis.check
def invalid_input_rejected(ctx, response, case):
    """Schema-violating input is refused; 413 is how a body over 1 MiB is
    refused (an over-long string can push a body past it), and a location
    batch refuses a bad item in its answer, keeping the others."""
    if response.status_code == 413:
        return True
    if response.status_code == 200 and case.path.endswith("/locations/batch") and response.json().get("rejected"):
        return True
    return checks.negative_data_rejection(ctx, response, case)


CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance, checks.response_headers_conformance, error_envelope]
# Semantic rules (a real IANA zone, a date in range, a cursor this API issued)
# cannot all be written in an OpenAPI 3.0 schema, so schema-valid input may
# still get a documented 422: positive_data_acceptance is not asked for.
NEGATIVE_CHECKS = CHECKS + [invalid_input_rejected]


@pytest.fixture
def world(client, user, admin):
    """Real resources, so that some examples reach past the 404."""
    receipt = client.put("/v1/me/consents", headers=user["headers"], json={"consents": {
        "location": True, "service_push": True, "marketing_push": True, "device_info": True}}).json["receipts"][0]
    device = add_device(client, user["headers"])
    client.put(f"/v1/devices/{device['id']}/push-token", json={"token": "fuzz-token-" + "z" * 64},
               headers=user["headers"])
    campaign = create_campaign(client, admin)
    return {"device_id": device["id"], "campaign_id": campaign["id"], "user_id": user["user"]["id"],
            "receipt_id": receipt}


def real_ids(case, world, turn):
    """Every other example uses real ids for the path parameters it has."""
    if turn % 2 == 0 and case.path_parameters:
        for name in case.path_parameters:
            if name in world:
                case.path_parameters[name] = world[name]


@pytest.mark.slow
@pytest.mark.parametrize("label,role", [(label, role) for label in OPERATIONS for role in ("user", "admin")]
                         + [(label, "installation") for label in INSTALLATION_OPERATIONS])
def test_fuzz_operation(app, client, user, admin, world, role, label):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operation = schema.find_operation_by_label(label)
    if role == "installation":
        installation = new_installation(client)
        client.put("/v1/installation/consents", headers=installation["headers"], json={"consents": {
            "location": True, "service_push": True, "device_info": True}})
        world = {**world, "device_id": add_device(client, installation["headers"])["id"]}
        headers = installation["headers"]
    else:
        headers = bearer((user if role == "user" else admin)["access_token"])
    for mode, mode_checks in ((GenerationMode.POSITIVE, CHECKS), (GenerationMode.NEGATIVE, NEGATIVE_CHECKS)):
        turns = itertools.count()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                  derandomize=True)
        def run(case):
            if mode is GenerationMode.POSITIVE:
                real_ids(case, world, next(turns))
            else:
                # an extra query parameter whose value is an empty list is not
                # sent at all: on the wire such a case violates nothing
                assume(not any(value == [] for value in (case.query or {}).values()))
            TALLY["examples"] += 1
            case.call_and_validate(headers=headers, checks=mode_checks)

        try:
            run()
        except Unsatisfiable:
            # no input of this operation can violate its schema (no
            # parameters, or only free-form strings): nothing negative to send
            assert mode is GenerationMode.NEGATIVE
    TALLY["operations"] += 1 if role == "user" else 0


def test_every_operation_is_fuzzed():
    assert len(OPERATIONS) >= 40
    assert all(" /v1/" in label or label.endswith(("/healthz", "/readyz")) or "openapi" in label
               for label in OPERATIONS)
