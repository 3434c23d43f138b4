"""Typer commands whose flags are generated from a settings model.

Every field of the model becomes `--field-name` (booleans: `--name/--no-name`), also settable as
`CMMS_FIELD_NAME`; flags the user leaves out fall back to the environment and then the defaults,
exactly as `CmmsSettings` resolves them.

Durations (`timedelta`) and choices (`Literal`) are given as text and checked by the model. Lists
are repeated flags (`--mill-arg=a --mill-arg=b`) and mappings repeated `KEY=VALUE` flags; their
environment variables hold JSON (`CMMS_MILL_ENV='{"A": "1"}'`), read by the model itself.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import typer
from pydantic import ValidationError

from cmms.common.durations import format_duration
from cmms.common.errors import UserError
from cmms.common.settings import CmmsSettings, env_name
from cmms.deploy.cli._options import settings_kwargs

Settings = TypeVar("Settings", bound=CmmsSettings)
_SIMPLE = (str, int, float, bool, Path)


def _option_type(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            annotation = members[0]
    if annotation is timedelta or get_origin(annotation) is Literal:
        return str
    if get_origin(annotation) is list and get_args(annotation) == (str,):
        return list[str]
    if get_origin(annotation) is dict and get_args(annotation) == (str, str):
        return _Mapping
    if annotation not in _SIMPLE:
        raise TypeError(f"no CLI option type for {annotation!r}")
    return annotation


class _Mapping:
    """Marks a `dict[str, str]` field: repeated `KEY=VALUE` flags."""


def _mapping(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"expected KEY=VALUE, got {pair!r}")
        mapping[key] = value
    return mapping


def _parameter(field_name: str, field: Any) -> inspect.Parameter:
    kind = _option_type(field.annotation)
    repeated = kind is _Mapping or kind == list[str]
    flag = "--" + field_name.replace("_", "-")
    declaration = f"{flag}/--no-{flag[2:]}" if kind is bool else flag
    required = field.is_required()
    default = None if required else field.get_default(call_default_factory=True)
    if isinstance(default, timedelta):
        default = format_duration(default)
    text = field.description or field_name.replace("_", " ")
    if get_origin(field.annotation) is Literal:
        text += f" ({'|'.join(map(str, get_args(field.annotation)))})"
    if repeated:
        text += f"; repeatable{' KEY=VALUE' if kind is _Mapping else ''} ({env_name(field_name)} as JSON)"
    if required:
        help_text = f"{text} (required)"
    elif default is None:
        help_text = f"{text} (optional)"
    else:
        help_text = f"{text} [default: {default}]"
    option = typer.Option(
        declaration,
        # Typer would split a list's variable on spaces; the model parses it as JSON instead.
        envvar=None if repeated else env_name(field_name),
        help=help_text,
        show_default=False,
        metavar=("KEY=VALUE" if kind is _Mapping else "TEXT") if repeated else None,
    )
    option_type = list[str] if repeated else kind
    return inspect.Parameter(
        field_name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[option_type | None, option],
    )


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        flag = "--" + field.replace("_", "-")
        problems.append(f"{flag} (or {env_name(field)}): {item['msg']}")
    return "; ".join(problems)


def settings_command(
    app: typer.Typer, name: str, settings_type: type[Settings], help_text: str
) -> Callable[[Callable[[Settings], None]], Callable[[Settings], None]]:
    """Register `name` on `app`: parse the flags into `settings_type` and call the function."""

    def register(run: Callable[[Settings], None]) -> Callable[[Settings], None]:
        mappings = {
            n
            for n, f in settings_type.model_fields.items()
            if _option_type(f.annotation) is _Mapping
        }

        def command(**given: Any) -> None:
            for name in mappings:
                if given.get(name) is not None:
                    given[name] = _mapping(given[name])
            try:
                settings = settings_type(**settings_kwargs(**given))
            except ValidationError as error:
                raise UserError(f"invalid settings: {_describe(error)}") from error
            run(settings)

        parameters = [_parameter(n, f) for n, f in settings_type.model_fields.items()]
        command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        command.__doc__ = help_text
        command.__name__ = name.replace("-", "_")
        app.command(name, help=help_text)(command)
        return run

    return register
