"""Pydantic JSON schemas made fit for an OpenAPI document."""

from __future__ import annotations

from typing import Any


def inline_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its `$defs` references replaced by the definitions themselves.

    OpenAPI resolves `#/$defs/...` against the whole document, where a model's own `$defs` are not.
    """
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        resolved = {key: resolve(value) for key, value in node.items() if key != "$ref"}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return {**resolve(definitions[ref.removeprefix("#/$defs/")]), **resolved}
        return {**resolved, "$ref": ref} if ref is not None else resolved

    result: dict[str, Any] = resolve(schema)
    return result
