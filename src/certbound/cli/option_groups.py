"""Options that several commands share, declared once as a dataclass.

Typer reads a command's options from its signature, so shared options would otherwise be declared,
and gathered into one object, again in every command (typer has no option groups: fastapi/typer#153).
A command names a dataclass as the type of one parameter; `with_option_groups` shows Typer that
dataclass's fields in its place, and calls the command with an instance built from them.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["with_option_groups"]

R = TypeVar("R")

_KEYWORD = inspect.Parameter.KEYWORD_ONLY  # Typer passes every value by name


def _fields_as_parameters(group: type[Any]) -> list[inspect.Parameter]:
    hints = typing.get_type_hints(group, include_extras=True)
    return [
        inspect.Parameter(
            field.name,
            _KEYWORD,
            default=inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default,
            annotation=hints[field.name],
        )
        for field in dataclasses.fields(group)
    ]


def with_option_groups(command: Callable[..., R]) -> Callable[..., R]:
    """`command` as Typer should see it: each dataclass-typed parameter spread into its fields, in place."""
    hints = typing.get_type_hints(command, include_extras=True)
    groups: dict[str, type[Any]] = {}
    parameters: list[inspect.Parameter] = []
    for parameter in inspect.signature(command).parameters.values():
        hint = hints[parameter.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            groups[parameter.name] = hint
            parameters += _fields_as_parameters(hint)
        else:
            parameters.append(parameter.replace(kind=_KEYWORD, annotation=hint))

    @functools.wraps(command)
    def expanded(**values: Any) -> R:
        for name, group in groups.items():
            values[name] = group(**{f.name: values.pop(f.name) for f in dataclasses.fields(group)})
        return command(**values)

    typer_view: Any = expanded
    typer_view.__signature__ = inspect.Signature(parameters)
    typer_view.__annotations__ = {p.name: p.annotation for p in parameters}
    return expanded
