"""Typer commands whose flags are generated from a settings model.

Every field of the model becomes `--field-name` (booleans: `--name/--no-name`), also settable as
`CMMS_FIELD_NAME`; flags the user leaves out fall back to the environment and then the defaults,
exactly as `CmmsSettings` resolves them.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import typer
from pydantic import ValidationError

from cmms.common.errors import UserError
from cmms.common.settings import CmmsSettings, env_name
from cmms.deploy.cli._options import settings_kwargs

Settings = TypeVar("Settings", bound=CmmsSettings)
_SIMPLE = (str, int, float, bool, Path)


def _option_type(annotation: Any) -> type:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            annotation = members[0]
    if annotation not in _SIMPLE:
        raise TypeError(f"no CLI option type for {annotation!r}")
    chosen: type = annotation
    return chosen


def _parameter(field_name: str, field: Any) -> inspect.Parameter:
    kind = _option_type(field.annotation)
    flag = "--" + field_name.replace("_", "-")
    declaration = f"{flag}/--no-{flag[2:]}" if kind is bool else flag
    required = field.is_required()
    default = None if required else field.default
    text = field.description or field_name.replace("_", " ")
    help_text = f"{text}{' (required)' if required else f' [default: {default}]'}"
    option = typer.Option(
        declaration, envvar=env_name(field_name), help=help_text, show_default=False
    )
    return inspect.Parameter(
        field_name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[kind | None, option],  # type: ignore[valid-type]
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
        def command(**given: Any) -> None:
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
