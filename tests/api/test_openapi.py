"""Schemathesis against /api/v1/openapi.json: generated requests for every
operation; no 500s, and every answer's status, content type and body match
the document."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from webapp.accounts.service import create_token


@pytest.fixture
def api_schema(app, make_user, client):
    admin = make_user(email="fuzz@example.com", role="admin")
    _token, secret = create_token(admin, "schemathesis")
    headers = {"Authorization": f"Bearer {secret}"}
    # Some data for the generated requests to find.
    client.put("/api/v1/customers/c1", json={"email": "c1@example.com", "tags": ["vip"]}, headers=headers)
    client.put(
        "/api/v1/orders/o1",
        json={
            "customer_external_id": "c1",
            "ordered_at": "2025-01-02",
            "total": 10,
            "items": [{"sku": "S1", "quantity": 1, "price": 10}],
        },
        headers=headers,
    )
    client.post(
        "/api/v1/segments",
        json={
            "code": "vip",
            "name": "VIP",
            "definition": {
                "version": 1,
                "blocks": [
                    {"entity": "customer", "filters": [{"field": "tags", "op": "in", "values": [{"value": "vip"}]}]}
                ],
            },
        },
        headers=headers,
    )
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    schema.fuzz_headers = headers
    return schema


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 20  # per operation and mode
STATS = {}


# Known records, so operations on one resource get past the 404 too.
KNOWN = {"code": "vip", "external_id": "c1", "id": 1}


def _fuzz(operation, mode, headers, path_parameters=None):
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    def run(case):
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        import os

        if os.environ.get("FUZZ_STATS"):
            STATS.setdefault(f"{operation.method.upper()} {operation.path} {mode} {bool(path_parameters)}", []).append(
                response.status_code
            )

    run()


def test_api_matches_its_document(api_schema):
    """Every operation, with valid (positive) and invalid (negative) data."""
    failures = []
    # Deletes last, so the known segment is there for the others.
    operations = sorted(
        (result.ok() for result in api_schema.get_all_operations()), key=lambda op: op.method.upper() == "DELETE"
    )
    assert len(operations) == 26
    for operation in operations:
        names = [p.name for p in operation.path_parameters]
        passes = [None] + ([{name: KNOWN[name] for name in names}] if names else [])
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in passes:
                try:
                    _fuzz(operation, mode, api_schema.fuzz_headers, path_parameters)
                except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report
                    failures.append(f"{operation.method.upper()} {operation.path} [{mode}, {path_parameters}]: {exc}")
    import os

    if os.environ.get("FUZZ_STATS"):
        from collections import Counter

        for key, codes in STATS.items():
            print(key, dict(Counter(codes)))
    assert not failures, "\n\n".join(failures)


def test_document_names_every_route(app):
    """Every /api/v1 route of the app is in the document, and nothing else is."""
    from webapp.api.openapi import document

    doc = document()
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi_json":
            path = rule.rule[len("/api/v1") :]
            for name in rule.arguments:
                path = path.replace(f"<path:{name}>", "{%s}" % name).replace(f"<int:{name}>", "{%s}" % name)
                path = path.replace(f"<{name}>", "{%s}" % name)
                for key in ("{run_id}", "{mailing_id}", "{trigger_id}"):
                    path = path.replace(key, "{id}")
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((method.lower(), path))
    documented = {(method, path) for path, item in doc["paths"].items() for method in item if method != "parameters"}
    assert routes == documented
