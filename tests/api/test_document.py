"""The OpenAPI document itself: version 3.1, every operation documented with its errors and
security, every schema property with an example (a mini-program team reads the document, not
our code)."""

import json
from typing import Any


def _lacking_examples(name: str, schema: dict[str, Any]) -> list[str]:
    missing = []
    for prop, spec in (schema.get("properties") or {}).items():
        if any(key in spec for key in ("$ref", "allOf", "anyOf", "oneOf", "example",
                                       "examples")):
            continue
        items = spec.get("items") or {}
        if spec.get("type") == "array" and ("$ref" in items or "allOf" in items):
            continue  # a list of documented objects
        if spec.get("type") == "object" and spec.get("properties"):
            missing += _lacking_examples(f"{name}.{prop}", spec)
            continue
        missing.append(f"{name}.{prop}")
    return missing


def test_the_document_is_openapi_3_1_and_every_property_has_an_example(client) -> None:
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.1")
    text = json.dumps(document["paths"]) + json.dumps(document["components"])
    # Only the schemas the operations use (flask-smorest also lists a page-number schema of
    # its own that no operation here answers with).
    used = {name for name in document["components"]["schemas"]
            if f'"#/components/schemas/{name}"' in text}
    missing = [m for name, schema in document["components"]["schemas"].items()
               if name in used for m in _lacking_examples(name, schema)]
    assert missing == [], missing
    for parameter_holder in document["paths"].values():
        for method, operation in parameter_holder.items():
            if method == "parameters":
                continue  # the path's own (path) parameters
            for parameter in operation.get("parameters", []):
                if parameter["in"] in ("query", "header"):
                    schema = parameter.get("schema", {})
                    assert ("example" in parameter or "example" in schema
                            or "examples" in parameter or "enum" in schema
                            or parameter["name"] == "If-None-Match"), (method, parameter)


def test_every_operation_says_how_it_fails_and_who_may_call_it(client) -> None:
    document = client.get("/api/v1/openapi.json").json
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in ("get", "put", "post", "patch", "delete"):
                continue  # the path's own parameters
            answers = operation["responses"]
            assert any(code.startswith("2") for code in answers), (method, path)
            if not path.startswith("/api/v1/auth/"):
                assert "security" in operation, (method, path)
            # Everything but the public reads can be refused, and says with what.
            errors = [code for code in answers if code[0] in "45"]
            assert errors, (method, path)
            for code in errors:
                answer = answers[code]
                if "$ref" in answer:
                    answer = document["components"]["responses"][answer["$ref"].split("/")[-1]]
                content = answer.get("content", {})
                assert "application/json" in content, (method, path, code)


def _unbounded_integers(document: dict[str, Any], name: str, schema: dict[str, Any],
                        seen: set[str]) -> list[str]:
    """The integer properties of a request schema, nested ones included, without a maximum."""
    if "$ref" in schema:
        ref = schema["$ref"].split("/")[-1]
        if ref in seen:
            return []
        seen.add(ref)
        return _unbounded_integers(document, ref, document["components"]["schemas"][ref], seen)
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            return [m for part in schema[key]
                    for m in _unbounded_integers(document, name, part, seen)]
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "integer" in kinds:
        return [] if "maximum" in schema else [name]
    if "array" in kinds:
        return _unbounded_integers(document, f"{name}[]", schema.get("items") or {}, seen)
    return [m for prop, spec in (schema.get("properties") or {}).items()
            for m in _unbounded_integers(document, f"{name}.{prop}", spec, seen)]


def test_every_number_a_client_sends_is_bounded(client) -> None:
    # A number beyond what the databases hold (an id of 10**21) used to reach a query and end
    # in a server error; the document's maximum is also what the API checks.
    document = client.get("/api/v1/openapi.json").json
    unbounded = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in ("get", "put", "post", "patch", "delete"):
                continue
            for parameter in operation.get("parameters", []):
                if parameter["in"] in ("query", "header"):
                    unbounded += _unbounded_integers(
                        document, f"{method} {path} ?{parameter['name']}",
                        parameter.get("schema", {}), set())
            for content in (operation.get("requestBody") or {}).get("content", {}).values():
                unbounded += _unbounded_integers(document, f"{method} {path}",
                                                 content.get("schema", {}), set())
    assert unbounded == [], unbounded
