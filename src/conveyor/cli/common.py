"""What every command shares: finding the app, and failing with one line and the right exit code.

Exit codes (ECOSYSTEM.md): 0 clean; 1 error or forced stop; 2 usage, import or config error;
3 backend unreachable. A user mistake must never end in a traceback, so library errors are
turned into :class:`CliError` at the group level; ``CONVEYOR_DEBUG=1`` shows the traceback of
an unexpected exception instead (for bug reports).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import click

from conveyor.app import Conveyor
from conveyor.errors import (
    BackendUnavailable,
    ConfigurationError,
    ConveyorError,
    EnqueueError,
)

if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


class CliError(click.ClickException):
    """A failure the user can act on: printed as ``error: ...`` on one line, no traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares a ClassVar

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file or sys.stderr)


def exit_code_for(error: ConveyorError) -> int:
    """Refusals of what was typed are usage errors; an unreachable store is its own code so
    scripts and orchestrators can tell "retry later" from "fix the command"."""
    if isinstance(error, BackendUnavailable):
        return EXIT_UNAVAILABLE
    if isinstance(error, ConfigurationError | EnqueueError):
        return EXIT_USAGE
    return EXIT_ERROR


def one_line(text: str) -> str:
    """Exception messages can span lines (SQL, nested causes); an error line must not."""
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def translate(error: Exception) -> CliError:
    if isinstance(error, ConveyorError):
        return CliError(one_line(str(error)) or type(error).__name__, exit_code_for(error))
    return CliError(f"{type(error).__name__}: {one_line(str(error))} "
                    "(set CONVEYOR_DEBUG=1 for a traceback)", EXIT_ERROR)


class ConveyorGroup(click.Group):
    """The root group: converts exceptions escaping any subcommand into :class:`CliError`."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own (Exit and Abort are RuntimeErrors): it reports them itself
        except ConveyorError as exc:
            raise translate(exc) from exc
        except Exception as exc:
            if os.environ.get("CONVEYOR_DEBUG"):
                raise
            raise translate(exc) from exc


# -- finding the app -----------------------------------------------------------------------------


def load_app(spec: str) -> Conveyor:
    """Import ``MODULE:APP`` the way uvicorn and celery do: the working directory comes first on
    ``sys.path``, so ``conveyor worker myproject.tasks:app`` works from the project root without
    installing it. ``APP`` defaults to ``app`` and may be a dotted path."""
    module_name, _, attr = spec.partition(":")
    if not module_name or (not attr and ":" in spec):
        raise CliError(f"--app must look like MODULE:APP, got {spec!r}", EXIT_USAGE)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    module = _import(module_name)
    target: Any = module
    for part in (attr or "app").split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise CliError(f"module {module_name!r} has no attribute {attr or 'app'!r}",
                           EXIT_USAGE) from None
    if not isinstance(target, Conveyor):
        raise CliError(f"{spec!r} is a {type(target).__name__}, not a Conveyor app", EXIT_USAGE)
    return target


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise CliError(f"cannot import module {module_name!r}: no module named {exc.name!r} "
                           f"(run from the project directory or set PYTHONPATH)",
                           EXIT_USAGE) from None
        raise CliError(f"importing {module_name!r} failed: {exc}", EXIT_USAGE) from None
    except ConveyorError as exc:
        raise CliError(f"importing {module_name!r} failed: {one_line(str(exc))}",
                       EXIT_USAGE) from None
    except Exception as exc:
        if os.environ.get("CONVEYOR_DEBUG"):
            raise
        raise CliError(f"importing {module_name!r} failed: {type(exc).__name__}: "
                       f"{one_line(str(exc))}", EXIT_USAGE) from None


@dataclass
class CliState:
    """The global options, resolved lazily so ``--help`` never imports user code."""

    app_spec: str | None
    url: str | None
    _app: Conveyor | None = field(default=None, repr=False)

    def app(self, *, require_tasks: bool = False, spec: str | None = None,
            url: str | None = None) -> Conveyor:
        """The user's app (``--app``), pointed at ``--url`` if given; without ``--app``, a bare
        app on ``--url`` for commands that only read the backend."""
        if self._app is not None:
            return self._app
        spec = spec or self.app_spec
        url = url or self.url
        if spec:
            app = load_app(spec)
            if url:
                app.use(url)
        elif require_tasks:
            raise CliError("this command needs the app: pass --app MODULE:APP "
                           "(or set CONVEYOR_APP)", EXIT_USAGE)
        elif url:
            app = Conveyor(url)
        else:
            raise CliError("no backend given: pass --url URL or --app MODULE:APP "
                           "(or set CONVEYOR_URL / CONVEYOR_APP)", EXIT_USAGE)
        self._app = app
        return app


pass_state = click.make_pass_decorator(CliState)


def _override_global(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """A subcommand's ``--app``/``--url``: the same as the global option, given after the
    command name (``conveyor stats --url ...``), which is where users type it."""
    state = ctx.find_object(CliState)
    if value is not None and state is not None and param.name is not None:
        setattr(state, param.name, value)


_GLOBAL_OPTIONS = {
    "app_spec": ("--app", "MODULE:APP", "The app (may also come before the command)."),
    "url": ("--url", "URL", "Backend URL; overrides the app's (may also come before the "
                            "command)."),
}


def accept_global_options(command: click.Command) -> click.Command:
    """Give ``command`` (and a group's subcommands) the global ``--app`` and ``--url`` it does not
    declare itself, so they work on either side of the command name."""
    declared = {p.name for p in command.params} | {
        opt for p in command.params for opt in getattr(p, "opts", ())}
    for name, (flag, metavar, text) in _GLOBAL_OPTIONS.items():
        if name not in declared and flag not in declared:
            command.params.append(click.Option(
                [flag, name], metavar=metavar, help=text, expose_value=False,
                callback=_override_global))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accept_global_options(sub)
    return command


# -- output --------------------------------------------------------------------------------------


def console(stderr: bool = False) -> Console:
    """A console on the current stdout (``CliRunner`` swaps it per call). Piped output gets a
    wide fixed width, so ids in tables are not folded for ``grep`` and ``awk``."""
    from rich.console import Console  # here: ``conveyor worker`` never prints through rich

    out = Console(stderr=stderr, highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(stderr=stderr, highlight=False, width=200)
    return out


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def parse_json(text: str | None, what: str, expected: type) -> Any:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{what} is not valid JSON ({exc.msg} at column {exc.colno}): {text!r}",
                       EXIT_USAGE) from None
    if not isinstance(value, expected):
        kind = "a JSON array" if expected is list else "a JSON object"
        raise CliError(f"{what} must be {kind}, got {text!r}", EXIT_USAGE)
    return value
