"""Checks bodies against Atlassian's published Jira Cloud v3 OpenAPI description (a subset).

`openapi/rest-v3-issues-search-transitions.openapi.json` is a verbatim subset of Atlassian's
`swagger-v3.v3.json` (Apache 2.0; provenance in `openapi/SOURCES.md`), shipped in the package
so the `syncd demo` sandbox validates too. OpenAPI 3.0 schemas are read as JSON Schema
draft 4, which is what they are closest to; `nullable` and `readOnly` are not enforced.

`jsonschema` is a test dependency: without it validation is off (`enabled` is False), and the
tests assert it is on.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).parent / "openapi" / "rest-v3-issues-search-transitions.openapi.json"

try:
    from jsonschema import Draft4Validator
except ImportError:  # pragma: no cover - only in installs without the test extras
    Draft4Validator = None


@cache
def _spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


@cache
def _validator(kind: str, path: str, method: str, status: str) -> Any:
    operation = _spec()["paths"][path][method.lower()]
    if kind == "request":
        content = operation["requestBody"]["content"]
    else:
        content = operation["responses"][status].get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is None or Draft4Validator is None:
        return None
    # The operation's schema wrapped so that "#/components/..." refs resolve in this document.
    return Draft4Validator({"components": _spec()["components"], "allOf": [schema]})


class SpecValidator:
    """Validation errors for one operation's request or response, as readable strings."""

    enabled = Draft4Validator is not None

    def request_errors(self, method: str, path: str, body: Any) -> list[str]:
        return _errors(_validator("request", path, method, ""), body)

    def response_errors(self, method: str, path: str, status: int, body: Any) -> list[str]:
        return _errors(_validator("response", path, method, str(status)), body)

    def schema_errors(self, name: str, instance: Any) -> list[str]:
        if Draft4Validator is None:
            return []
        validator = Draft4Validator(
            {"components": _spec()["components"], "$ref": f"#/components/schemas/{name}"}
        )
        return _errors(validator, instance)


def _errors(validator: Any, instance: Any) -> list[str]:
    if validator is None:
        return []
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<body>'}: {error.message}"
        for error in validator.iter_errors(instance)
    ]
