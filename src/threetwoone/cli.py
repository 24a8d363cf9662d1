"""The command line: parse options, wire objects, map errors to exit codes.

Nothing here audits or decides; see audit.py and policy.py.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import textwrap
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import click

from . import __version__
from .errors import ExitCode, ThreeTwoOneError
from .inventory import Inventory, load_inventory
from .policy import Policy, builtin_names, describe, load_policy
from .policy import resolve_policies as resolve_dataset_policies

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_POLICY = "3-2-1"


def fail(message: str, code: int) -> None:
    click.echo(f"threetwoone: {message}", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """One clear line and the right exit code; a traceback only with --debug."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(click.get_current_context().find_root().params.get("debug"))
        try:
            return func(*args, **kwargs)
        except ThreeTwoOneError as exc:
            if debug:
                traceback.print_exc()
            fail(str(exc).replace("\n", "\nthreetwoone: "), int(exc.exit_code))
        except click.ClickException:
            raise  # usage errors: click prints them and exits 2
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except BrokenPipeError:
            sys.stderr.close()
            sys.exit(int(ExitCode.TOOL_FAILED))
        except Exception as exc:  # the tool itself failed: exit 5, never a verdict
            if debug:
                traceback.print_exc()
            fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for "
                 "details)", int(ExitCode.TOOL_FAILED))

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="threetwoone")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def main(debug: bool) -> None:
    """Audit that each research dataset is stored in 3 copies, on 2 kinds of
    media, with 1 off-site, and that every byte is still intact.

    Exit codes: 0 all pass, 1 a dataset fails its policy, 2 usage error,
    3 undetermined (a copy unreachable or unreadable), 4 invalid inventory or
    policy, 5 the tool itself failed.
    """


def resolve_policies(inventory: Inventory, override: str | None,
                     datasets: list[str]) -> dict[str, Policy]:
    """The policy of each dataset: --policy, else the dataset's, else its
    class's, else the inventory's, else 3-2-1 (see policy.resolve_policies)."""
    return resolve_dataset_policies(inventory, override, datasets, DEFAULT_POLICY)


def select_datasets(inventory: Inventory, names: tuple[str, ...]) -> list[str]:
    unknown = [n for n in names if n not in inventory.datasets]
    if unknown:
        raise click.BadParameter(
            f"unknown dataset(s): {', '.join(unknown)} (the inventory has: "
            f"{', '.join(inventory.datasets)})", param_hint="'-d/--dataset'")
    return list(dict.fromkeys(names)) if names else list(inventory.datasets)


def write_atomically(path: str, text: str) -> None:
    """Temporary file in the same folder, fsync, rename: a reader never sees half a report."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".threetwoone-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@main.command()
@click.argument("inventory", type=click.Path(dir_okay=False, path_type=str))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Report format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=str),
              help="Write the report to FILE (atomically) instead of stdout.")
@click.option("--state", type=click.Path(dir_okay=False, path_type=str),
              help="State catalog (default $THREETWOONE_STATE, else "
                   "$XDG_STATE_HOME/threetwoone/state.sqlite3).")
@click.option("-d", "--dataset", "datasets", multiple=True, metavar="NAME",
              help="Audit only this dataset (repeatable).")
@click.option("--policy", metavar="NAME|FILE",
              help="Judge every dataset by this policy instead of the inventory's.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Hash with N parallel workers.")
@click.option("--verify", type=click.Choice(["full", "changed"]), default="full",
              show_default=True,
              help="full: re-read every file; changed: re-read only files whose size, "
                   "mtime or identity changed since the last audit.")
@click.option("--force-download", is_flag=True,
              help="Never trust server-side digests: read every byte.")
@click.option("-q", "--quiet", is_flag=True, help="Print problems only.")
@handle_errors
def audit(inventory: str, fmt: str, output: str | None, state: str | None,
          datasets: tuple[str, ...], policy: str | None, jobs: int, verify: str,
          force_download: bool, quiet: bool) -> None:
    """Audit every copy of every dataset in INVENTORY against its policy."""
    from .audit import AuditOptions, Auditor
    from .catalog import Catalog, default_state_path
    from .progress import ProgressLine
    from .reports import FORMATTERS

    inv = load_inventory(inventory)
    names = select_datasets(inv, datasets)
    policies = resolve_policies(inv, policy, names)
    progress = ProgressLine.for_stderr()
    with Catalog(state or default_state_path()) as catalog:
        auditor = Auditor(inv, policies, catalog,
                          AuditOptions(workers=jobs, verify=verify,
                                       force_download=force_download),
                          progress=progress.as_progress())
        try:
            result = auditor.run(names)
        finally:
            progress.clear()
    text = FORMATTERS[fmt](result, quiet)
    if output:
        write_atomically(output, text)
    elif text:
        click.echo(text, nl=False)
    sys.exit(result.exit_code)


@main.command()
@click.argument("inventory", type=click.Path(dir_okay=False, path_type=str))
@click.option("--policy", metavar="NAME|FILE", help="Also check this policy.")
@handle_errors
def validate(inventory: str, policy: str | None) -> None:
    """Check INVENTORY and its policies without touching any storage."""
    inv = load_inventory(inventory)
    resolve_policies(inv, policy, list(inv.datasets))
    click.echo(f"{inventory}: valid ({len(inv.locations)} locations, "
               f"{len(inv.datasets)} datasets)")


@main.group(invoke_without_command=True)
@click.pass_context
@handle_errors
def policies(ctx: click.Context) -> None:
    """List the built-in policies and their rules in words.

    Rules under "attested" are stated by the standard but no audit can check
    them; the report lists them, it never counts them as passed."""
    if ctx.invoked_subcommand is not None:
        return
    for number, name in enumerate(builtin_names()):
        spec = load_policy(name)
        rules = spec.rules_in_words()
        if number:
            click.echo()
        click.echo(f"{name}: {rules[0]}")
        for rule in rules[1:]:
            click.echo(f"{' ' * (len(name) + 2)}{rule}")
        for item in spec.attested:
            click.echo(f"{' ' * (len(name) + 2)}attested, not checked: {item}")


@policies.command("show")
@click.argument("name")
@handle_errors
def policies_show(name: str) -> None:
    """Show one policy (a built-in NAME or a FILE) in full."""
    info = describe(load_policy(name))
    click.echo(f"name: {info['name']}")
    click.echo(f"file: {info['source']}")
    if info["description"]:
        click.echo(textwrap.fill(info["description"], width=88,
                                 initial_indent="description: ", subsequent_indent="  "))
    click.echo("rules:")
    for rule in info["rules"]:
        click.echo(f"  - {rule}")
    if info["attested"]:
        click.echo("attested (stated by the standard, not checkable by an audit):")
        for item in info["attested"]:
            click.echo(f"  - {item}")
