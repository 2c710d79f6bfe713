"""GitHub's REST OpenAPI subsets as JSON-schema validators (for the fake and the tests).

The descriptions are OpenAPI 3.0: `nullable: true` is not JSON Schema, so it is rewritten to
an explicit `null` alternative before the documents are handed to `jsonschema`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_FILES = {
    "rest": "rest-issues-labels-comments-search.openapi.json",
    "hooks": "rest-repo-webhooks-deliveries.openapi.json",
}


# Copied from octokit's published OpenAPI description; provenance in specs/SOURCES.md.
SPECS_DIR = Path(__file__).parent / "specs"


def _denull(node: Any) -> Any:
    """Rewrite OpenAPI 3.0 `nullable` into JSON Schema, recursively."""
    if isinstance(node, list):
        return [_denull(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _denull(value) for key, value in node.items()}
    if out.pop("nullable", False) is True:
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        if isinstance(out.get("type"), str) and not any(k in out for k in ("oneOf", "anyOf")):
            out["type"] = [out["type"], "null"]
        else:
            return {"anyOf": [{"type": "null"}, out]}
    return out


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class OpenApiSubset:
    """One OpenAPI document; hands out validators for request and response bodies."""

    def __init__(self, document: dict[str, Any], uri: str) -> None:
        self.document = _denull(document)
        self.uri = uri
        resource = Resource.from_contents(self.document, default_specification=DRAFT202012)
        self.registry: Registry = Registry().with_resource(uri, resource)

    def operation(self, method: str, path: str) -> dict[str, Any]:
        return self.document["paths"][path][method.lower()]

    def _validator(self, *parts: str) -> Draft202012Validator:
        ref = {"$ref": f"{self.uri}#/{_pointer(*parts)}"}
        return Draft202012Validator(ref, registry=self.registry)

    def request_validator(self, method: str, path: str) -> Draft202012Validator | None:
        body = self.operation(method, path).get("requestBody")
        if not body:
            return None
        return self._validator(
            "paths", path, method.lower(), "requestBody", "content", "application/json", "schema"
        )

    def request_body_required(self, method: str, path: str) -> bool:
        return bool(self.operation(method, path).get("requestBody", {}).get("required"))

    def response_validator(self, method: str, path: str, status: int) -> Draft202012Validator:
        response = self.operation(method, path)["responses"][str(status)]
        if "$ref" in response:
            raise ValueError(f"response {status} of {method} {path} is a shared reference")
        return self._validator(
            "paths",
            path,
            method.lower(),
            "responses",
            str(status),
            "content",
            "application/json",
            "schema",
        )


@lru_cache(maxsize=4)
def load(name: str) -> OpenApiSubset:
    """The subset `name` ("rest" or "hooks"), shipped in `specs/`."""
    document = json.loads((SPECS_DIR / SPEC_FILES[name]).read_text())
    return OpenApiSubset(document, f"urn:syncd:github:{name}")
