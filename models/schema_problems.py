"""The one problem of a pydantic ``ValidationError`` a user should hear about first, in words.

Specs and config files are typed by hand, so the likeliest mistake is a misspelt key
(``colums:``): pydantic reports it as an extra input *and* the real key as missing. The
unknown key is the cause, so it is reported first, with the valid key closest to it.
"""

from __future__ import annotations

import difflib
import types
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

# How alike a misspelt key and a valid one must be to suggest it (difflib's ratio).
SUGGESTION_CUTOFF = 0.6


@dataclass(frozen=True)
class SchemaProblem:
    kind: Literal["unknown", "missing", "invalid"]
    where: str  # dotted path: ``target.positive``, ``sensitive.0.privileged``
    message: str  # pydantic's, without its "Value error, " prefix
    value: object = None
    valid_keys: tuple[str, ...] = ()  # the keys allowed where an unknown key stands
    suggestion: str | None = None  # the valid key closest to an unknown one

    @property
    def leaf(self) -> str:
        return self.where.rsplit(".", 1)[-1]


def first_problem(error: ValidationError, model: type[BaseModel]) -> SchemaProblem:
    """The problem to report: an unknown key if there is one, else pydantic's first."""
    problems = error.errors()
    unknown = [p for p in problems if p["type"] == "extra_forbidden"]
    chosen = (unknown or problems)[0]
    location = tuple(chosen["loc"])
    where = ".".join(str(part) for part in location)
    message = str(chosen["msg"]).removeprefix("Value error, ")
    if chosen["type"] == "extra_forbidden":
        valid = tuple(allowed_keys(model, location[:-1]))
        return SchemaProblem(
            "unknown", where, message, chosen.get("input"), valid, closest(location[-1], valid)
        )
    kind: Literal["missing", "invalid"] = "missing" if chosen["type"] == "missing" else "invalid"
    return SchemaProblem(kind, where, message, chosen.get("input"))


def closest(key: object, candidates: tuple[str, ...] | list[str]) -> str | None:
    matches = difflib.get_close_matches(str(key), candidates, n=1, cutoff=SUGGESTION_CUTOFF)
    return matches[0] if matches else None


def allowed_keys(model: type[BaseModel], location: tuple[int | str, ...]) -> list[str]:
    """The field names of the model found at ``location`` inside ``model`` (empty if none)."""
    current: Any = model
    for part in location:
        current = _inner(current, part)
        if current is None:
            return []
    model_class = _model_in(current)
    return list(model_class.model_fields) if model_class else []


def _inner(annotation: Any, part: int | str) -> Any:
    """The type one step into ``annotation``: a model's field, a mapping's or sequence's item."""
    model_class = _model_in(annotation)
    if model_class is not None:
        field = model_class.model_fields.get(str(part))
        return field.annotation if field else None
    for option in _options(annotation):
        origin = get_origin(option)
        if origin in (dict, list, tuple):
            arguments = [a for a in get_args(option) if a is not Ellipsis]
            return arguments[-1] if arguments else None
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for option in _options(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None


def _options(annotation: Any) -> tuple[Any, ...]:
    """The members of ``X | Y`` (``Optional[X]`` included), or ``annotation`` alone."""
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)
