"""Changing an entity: merge the change into it, then validate the WHOLE result.

A partial update (PATCH) is checked field by field when it is parsed, but only the merged
object can say whether the result is valid: `null` for a required field passes the update
model and breaks the entity. Every entity change goes through `merged` or `evolved`, so an
invalid result is a 422 naming the fields (InvalidInput), never a validation crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from coaching.domain.errors import InvalidInput


def _field(location: tuple[int | str, ...]) -> str:
    # ("weekly_availability", 0, "start") -> "weekly_availability[0].start"
    name = ""
    for part in location:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def problems(exc: ValidationError) -> list[dict[str, str]]:
    """Each failure as {field, message}; a null where a value is required says so."""
    found: list[dict[str, str]] = []
    for error in exc.errors(include_url=False):
        message = "cannot be null" if error.get("input", ...) is None else str(error["msg"])
        found.append({"field": _field(tuple(error["loc"])), "message": message.removeprefix("Value error, ")})
    return found


def invalid(exc: ValidationError, what: str) -> InvalidInput:
    found = problems(exc)
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in found[:5])
    return InvalidInput(f"the {what} would be invalid: {summary}", field=found[0]["field"], details={"problems": found})


def validated[ModelT: BaseModel](model: type[ModelT], data: Mapping[str, Any], what: str) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc, what) from exc


def merged[ModelT: BaseModel](current: ModelT, changes: BaseModel, what: str, **extra: Any) -> ModelT:
    """Apply the fields the caller sent (and `extra`), then validate the merged entity."""
    data = current.model_dump() | changes.model_dump(exclude_unset=True) | extra
    return validated(type(current), data, what)


def evolved[ModelT: BaseModel](current: ModelT, what: str, **changes: Any) -> ModelT:
    """The entity with `changes`, validated as a whole (model_copy would skip validation)."""
    return validated(type(current), current.model_dump() | changes, what)
