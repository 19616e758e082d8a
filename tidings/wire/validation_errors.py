"""Pydantic validation errors as Vonage's `invalid_parameters` list."""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from tidings.domain.errors import InvalidParameter

_REASONS = {
    "missing": "is required.",
    "string_type": "must be a string.",
    "int_type": "must be an integer.",
    "bool_type": "must be a boolean.",
    "dict_type": "must be an object.",
    "model_type": "must be an object.",
    "list_type": "must be an array.",
}


def member_error(member: str, reason: str) -> PydanticCustomError:
    """For a check across members, raised by a model validator: it names the member at fault
    (dotted, from the model's own place), where pydantic would name only the model, or `body`."""
    return PydanticCustomError("member", reason, {"member": member})


def invalid_parameters(error: ValidationError) -> list[InvalidParameter]:
    found: dict[str, InvalidParameter] = {}
    for item in error.errors(include_url=False):
        parts = [str(part) for part in item["loc"] if not _is_union_tag(part)]
        if item["type"] == "member":
            parts.append(str(item.get("ctx", {})["member"]))
        name = ".".join(parts) or "body"
        reason = _REASONS.get(item["type"]) or _sentence(item["msg"])
        found.setdefault(name, InvalidParameter(name=name, reason=reason))
    return list(found.values())


# Pydantic names the branch of a union in the location: a model's class name, a type (`int`,
# `constrained-str`, `list[int]`, `literal['a']`) or a validator (`function-after[...]`). Clients
# know the field by its wire name only, and wire names are snake_case.
_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "bytes", "none", "decimal", "date", "datetime"})


def _is_union_tag(part: object) -> bool:
    return isinstance(part, str) and (
        "[" in part
        or part.startswith(("function-", "constrained-"))
        or part in _TYPE_TAGS
        or part.lstrip("_")[:1].isupper()
    )


def _sentence(message: str) -> str:
    message = message.removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    return message if message.endswith(".") else message + "."
