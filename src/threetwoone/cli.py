"""The command line: parse options, wire objects, map errors to exit codes.

Nothing here audits or decides; see audit.py and policy.py.
"""

from __future__ import annotations

import functools
import gc
import os
import sqlite3
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from . import __version__
from .errors import ExitCode, StateError, ThreeTwoOneError
from .inventory import Inventory, load_inventory
from .policy import Policy, describe
from .policyfile import builtin_names, load_policy
from .policyfile import resolve_policies as resolve_dataset_policies
from .schedule import VERIFY_MODES, VerifyMode
from .words import plural

if TYPE_CHECKING:
    from .catalog import Catalog
    from .connections import Connections
    from .coverage import CoverageCheck
    from .reports.targets import ReportTarget
    from .results import AuditResult
    from .selection import Shard

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_POLICY = "3-2-1"

#: Datasets audited at once by default: enough to keep a NAS, a USB disk and an
#: off-site host busy together, few enough not to crowd one machine.
DEFAULT_PARALLEL = 4


def fail(message: str, code: int) -> NoReturn:
    """Each line of ``message`` on stderr after ``threetwoone: ``, then exit."""
    click.echo("\n".join(f"threetwoone: {line}" for line in message.split("\n")), err=True)
    sys.exit(code)


def error_outcome(exc: BaseException) -> tuple[str, int] | None:
    """The one line and exit code an error ends a run with; None for errors
    click reports itself (usage errors, exit 2) and interruptions."""
    if isinstance(exc, ThreeTwoOneError):
        return str(exc), int(exc.exit_code)
    if isinstance(exc, click.ClickException | KeyboardInterrupt | BrokenPipeError):
        return None
    if isinstance(exc, sqlite3.Error):  # where the catalog was not wrapped in explained()
        from .catalogerrors import KEEP_IT
        return (f"state catalog could not be used ({exc}); run with --debug for details. "
                f"{KEEP_IT}", int(ExitCode.TOOL_FAILED))
    if isinstance(exc, Exception):  # the tool itself failed: exit 5, never a verdict
        return (f"internal error: {type(exc).__name__}: {exc} (run with --debug for "
                "details)", int(ExitCode.TOOL_FAILED))
    return None


def handle_errors(func: F) -> F:
    """One clear line and the right exit code; a traceback only with --debug."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(click.get_current_context().find_root().params.get("debug"))
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise  # usage errors: click prints them and exits 2
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except BrokenPipeError:
            sys.stderr.close()
            sys.exit(int(ExitCode.TOOL_FAILED))
        except Exception as exc:
            outcome = error_outcome(exc)
            if outcome is None:
                raise
            if debug:
                import traceback

                traceback.print_exc()
            fail(*outcome)

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
    # An audit makes a few short-lived tuples per file and almost no reference
    # cycles: the default cycle collector (every 700 allocations) costs it ~8% of
    # its CPU time for nothing.  Collect rarely instead; memory stays flat.
    gc.set_threshold(100_000, 50, 1000)


def resolve_policies(inventory: Inventory, override: str | None,
                     datasets: list[str]) -> dict[str, Policy]:
    """The policy of each dataset: --policy, else the dataset's, else its
    class's, else the inventory's, else 3-2-1 (see policy.resolve_policies)."""
    return resolve_dataset_policies(inventory, override, datasets, DEFAULT_POLICY)


def select_datasets(inventory: Inventory, names: tuple[str, ...],
                    param_hint: str = "'-d/--dataset'") -> list[str]:
    """The datasets ``-d`` names (exact names or globs), in inventory order."""
    from .selection import SelectionError, select

    try:
        return select(list(inventory.datasets), names)
    except SelectionError as exc:
        raise click.BadParameter(str(exc), param_hint=param_hint) from None


def warn(message: str) -> None:
    click.echo(f"threetwoone: warning: {message}", err=True)


def expanded(inventory: Inventory, catalog: Catalog | None, connections: Connections
             ) -> Inventory:
    """``inventory`` with its collections' datasets (listing their locations);
    warnings on stderr."""
    from . import memory
    from .expansion import expand

    remembered = memory.members(catalog.db) if catalog is not None else {}
    expansion = expand(inventory, connections.get, remembered)
    for warning in expansion.warnings:
        warn(warning)
    return expansion.inventory


def with_remembered(inventory: Inventory, path: str) -> Inventory:
    """``inventory`` with its collections' datasets as the catalog at ``path``
    remembers them from the audits (for commands that touch no storage)."""
    if not inventory.collections or not os.path.exists(path):
        return inventory
    from . import memory
    from .catalog import Catalog
    from .catalogerrors import explained
    from .expansion import remembered_datasets

    with explained(path), Catalog(path, create=False) as catalog:
        return remembered_datasets(inventory, memory.members(catalog.db))


def write_atomically(path: str, text: str) -> None:
    """Temporary file in the same folder, fsync, rename: a reader never sees half a report."""
    folder = os.path.dirname(os.path.abspath(path))
    import tempfile

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


def check_state_option(ctx: click.Context, param: click.Parameter,
                       value: str | None) -> str | None:
    """``--state ''`` must not quietly mean the default catalog, and a path that
    is a device, FIFO or folder is refused before anything is created."""
    if value is None:
        return None
    if not value:
        raise click.BadParameter("is empty; leave --state out for the default catalog "
                                 "($THREETWOONE_STATE, else "
                                 "$XDG_STATE_HOME/threetwoone/state.sqlite3)")
    from .catalog import check_catalog_path
    try:
        check_catalog_path(value)
    except ThreeTwoOneError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def note_missing_catalog(catalog: Catalog) -> None:
    """``history`` and ``status`` only read: on a catalog that is not there they
    create none, answer as for an empty one, and say so on stderr."""
    if not catalog.exists:
        click.echo(f"threetwoone: no state catalog at {catalog.path} (nothing was audited "
                   "with it; check --state or $THREETWOONE_STATE)", err=True)


def state_option(func: F) -> F:
    return click.option(
        # readable=False: an unreadable catalog gets catalogerrors' explanation.
        "--state", type=click.Path(dir_okay=False, readable=False, path_type=str),
        callback=check_state_option,
        help="State catalog (default $THREETWOONE_STATE, else "
             "$XDG_STATE_HOME/threetwoone/state.sqlite3).")(func)


def lock_option(func: F) -> F:
    return click.option(
        "--lock-timeout", type=click.FloatRange(0), default=60.0, show_default=True,
        metavar="SECONDS",
        help="Wait this long for another run on the same catalog to finish, then exit 5.")(
        func)


def clock() -> Callable[[], float]:
    """The wall clock, or a fixed time from $THREETWOONE_NOW (epoch seconds) so
    tests and what-if runs can simulate nights without waiting for them."""
    fixed = os.environ.get("THREETWOONE_NOW")
    if not fixed:
        import time
        return time.time
    try:
        value = float(fixed)
    except ValueError:
        raise click.BadParameter(f"THREETWOONE_NOW={fixed!r} is not epoch seconds") from None
    return lambda: value


def parse_option(parser: Callable[[str], Any], value: str | None, name: str) -> Any:
    if value is None:
        return None
    try:
        return parser(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None


def report_format_names() -> list[str]:
    from .reports import FORMATTERS
    return list(FORMATTERS)


def parse_shard_option(ctx: click.Context, param: click.Parameter, value: str | None
                       ) -> Shard | None:
    from .selection import parse_shard

    return parse_option(parse_shard, value, "'--shard'")  # type: ignore[no-any-return]


def parse_report_targets(ctx: click.Context, param: click.Parameter,
                         values: tuple[str, ...]) -> list[ReportTarget]:
    from .reports.targets import parse_target
    return [parse_option(lambda v: parse_target(v, report_format_names()), value,
                         "'--report'") for value in values]


def report_options(report: str, also_help: str) -> Callable[[F], F]:
    """``--format``, ``-o`` and ``--report``, as every command that writes a
    report spells them; ``report`` names what ``-o`` writes."""
    options = (
        click.option("--format", "fmt", type=click.Choice(report_format_names()),
                     default="table", show_default=True,
                     help="Report format on stdout (or -o)."),
        click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=str),
                     help=f"Write {report} to FILE (atomically) instead of stdout."),
        click.option("--report", "reports", multiple=True, metavar="FORMAT:PATH",
                     callback=parse_report_targets, help=also_help))

    def decorate(func: F) -> F:
        for option in reversed(options):  # the first listed is applied last: shown first
            func = option(func)
        return func
    return decorate


@main.command()
@click.argument("inventory", type=click.Path(path_type=str))
@report_options("the report", f"Also write a report in FORMAT "
                f"({', '.join(report_format_names())}) to PATH, atomically; repeatable. "
                "Written also when the run ends with exit 4 or 5, with that status.")
@state_option
@click.option("-d", "--dataset", "datasets", multiple=True, metavar="NAME",
              help="Audit only this dataset (repeatable).")
@click.option("--policy", metavar="NAME|FILE",
              help="Judge every dataset by this policy instead of the inventory's.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=None,
              help="Hash at most N files at once: worker processes for local copies "
                   "(default: one per CPU), parallel transfers for remote ones (default 1).")
@click.option("--parallel", type=click.IntRange(1, 64), default=DEFAULT_PARALLEL,
              show_default=True, metavar="N",
              help="Audit up to N datasets at once; each location serves one copy at a "
                   "time, so copies on different locations are read at the same time.")
@click.option("--verify", type=click.Choice(VERIFY_MODES),
              default="scheduled", show_default=True,
              help="full: re-read every file; changed: re-read only new or changed files "
                   "(size, mtime, inode/ETag); scheduled: changed files plus the files due "
                   "by the fixity schedule.")
@click.option("--fixity-interval", default="30d", show_default=True, metavar="DURATION",
              help="With --verify scheduled: re-read every file at least this often, "
                   "spread over the nights (e.g. 30d, 90d).")
@click.option("--max-read", metavar="SIZE",
              help="Cap tonight's scheduled re-reads (e.g. 500GiB). Changed files are "
                   "always read.")
@click.option("--time-limit", metavar="DURATION",
              help="Stop starting scheduled re-reads after this long (e.g. 4h).")
@click.option("--force-download", is_flag=True,
              help="Never trust server-side digests: read every byte.")
@click.option("--shard", metavar="K/N", callback=parse_shard_option,
              help="Audit only shard K (0-based) of N, chosen by a stable hash of each "
                   "dataset's name, with a catalog of its own (STATE.shard-K-of-N); "
                   "combine the shards' JSON reports with 'threetwoone merge'.")
@lock_option
@click.option("-q", "--quiet", is_flag=True, help="Print problems only.")
@handle_errors
def audit(inventory: str, fmt: str, output: str | None, reports: list[ReportTarget],
          state: str | None, datasets: tuple[str, ...], policy: str | None, jobs: int | None,
          parallel: int, verify: VerifyMode, fixity_interval: str, max_read: str | None,
          time_limit: str | None, force_download: bool, shard: Shard | None,
          lock_timeout: float, quiet: bool) -> None:
    """Audit every copy of every dataset in INVENTORY against its policy."""
    targets, output = report_targets(reports, output, fmt, quiet)
    from .catalog import default_state_path
    check_report_targets(targets, inventory, state or default_state_path())
    run = RunClock.start()
    try:
        result = run_audit(inventory, state, datasets, policy, jobs, verify,
                           fixity_interval, max_read, time_limit, force_download,
                           lock_timeout, targets, quiet, shard, parallel)
    except Exception as exc:
        outcome = error_outcome(exc)
        if outcome is not None and outcome[1] in (ExitCode.INVALID, ExitCode.TOOL_FAILED):
            # No dashboard may keep showing the last green: every report says so.
            failed = run.failed(inventory, *outcome)
            failed.shard = str(shard) if shard else None
            failed.inventory_sha256 = inventory_digest(inventory) if shard else None
            write_reports(targets, failed, exc)
        raise
    from .reports.common import baseline_notice
    notice = baseline_notice(result)
    if notice:  # on stderr, -q or not: a lost catalog must never go unnoticed
        click.echo(f"threetwoone: {notice}", err=True)
    deliver(result, fmt, output, quiet, targets)


def mark_unfinished(targets: list[ReportTarget], inventory: str, shard: Shard) -> None:
    """A shard's reports say it has not finished until it has: a shard killed
    mid-run (the job's time limit, a node lost) must not leave an earlier run's
    report where merge would take it for this run's.  (Written only once every
    report path is known to be none of the run's inputs.)"""
    run = RunClock.start()
    unfinished = run.failed(inventory, f"the audit of shard {shard} started at "
                            f"{run.started_at} has not finished (still running, or it was "
                            "killed)", int(ExitCode.TOOL_FAILED))
    unfinished.shard = str(shard)
    unfinished.inventory_sha256 = inventory_digest(inventory)
    write_reports(targets, unfinished)


def report_targets(reports: list[ReportTarget], output: str | None, fmt: str, quiet: bool
                   ) -> tuple[list[ReportTarget], str | None]:
    """Every report file of the run (``--report``, and ``-o`` unless it is ``-``,
    standard output), checked before anything runs; and ``-o`` as given."""
    from .reports.targets import ReportTarget, check_distinct, check_path

    targets: list[ReportTarget] = list(reports)
    if output == "-":
        output = None  # standard output
    if output:
        parse_option(check_path, output, "'-o/--output'")
        targets.append(ReportTarget(fmt, output, quiet=quiet))
    try:
        check_distinct(targets)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--report'") from None
    return targets, output


def deliver(result: AuditResult, fmt: str, output: str | None, quiet: bool,
            targets: list[ReportTarget]) -> None:
    """The report on stdout (unless -o), every report file, and the exit code."""
    if not output:
        from .reports import FORMATTERS
        text = FORMATTERS[fmt](result, quiet)
        if text:
            click.echo(text, nl=False)
    write_reports(targets, result)
    sys.exit(result.exit_code)


def run_audit(inventory: str, state: str | None, datasets: tuple[str, ...],
              policy: str | None, jobs: int | None, verify: VerifyMode, fixity_interval: str,
              max_read: str | None, time_limit: str | None, force_download: bool,
              lock_timeout: float, targets: list[ReportTarget], quiet: bool = False,
              shard: Shard | None = None, parallel: int = 1) -> AuditResult:
    """Load, audit, and read the recent history for the reports; any error escapes."""
    from . import memory
    from .audit import AuditOptions, Auditor
    from .catalog import Catalog, default_state_path, exclusive_lock, now_iso
    from .catalogerrors import explained
    from .connections import Connections, report_locations
    from .coverage import check_coverage
    from .expansion import expand
    from .progress import ProgressLine
    from .reports.common import iso_time
    from .schedule import VerifyPlan, parse_duration, parse_size

    plan = VerifyPlan(
        mode=verify,
        interval=parse_option(parse_duration, fixity_interval, "'--fixity-interval'"),
        max_read=parse_option(parse_size, max_read, "'--max-read'"),
        time_limit=parse_option(parse_duration, time_limit, "'--time-limit'"))
    inv = load_inventory(inventory)
    path = state or default_state_path()
    if shard is not None:
        path = shard_state_path(path, shard)
    check_report_targets(targets, inventory, path, inv)
    # An invalid policy anywhere: exit 4 before any I/O.  (The policies of the
    # datasets collections find are checked once they are found.)
    check_report_targets(targets, inventory, path, inv,
                         resolve_policies(inv, policy, list(inv.datasets)))
    progress = ProgressLine.for_stderr(quiet)
    with (explained(path), exclusive_lock(path, lock_timeout), Catalog(path) as catalog,
          Connections() as connections):
        new_catalog = catalog.is_new()
        if new_catalog and shard is not None:
            for other in other_shard_catalogs(state or default_state_path(), shard):
                warn(f"a catalog of another shard count is there ({other}): the "
                     f"references it holds are not used by shard {shard}; keep the number "
                     "of shards from night to night")
        expansion = expand(inv, connections.get, memory.members(catalog.db))
        for warning in expansion.warnings:
            warn(warning)
        full = expansion.inventory
        names = select_datasets(full, datasets)
        if shard is not None:
            names = [name for name in names if shard.holds(name)]
        policies = resolve_policies(full, policy, names)
        if full is not inv:  # the copies collections found are inputs too
            check_report_targets(targets, inventory, path, full, policies)
        if shard is not None:
            mark_unfinished(targets, inventory, shard)
        auditor = Auditor(full, policies, catalog,
                          AuditOptions(workers=jobs, plan=plan, force_download=force_download,
                                       clock=clock(), parallel=parallel),
                          progress=progress.as_progress(), connections=connections)

        def before_recording(result: AuditResult) -> None:
            result.collections = [c.as_dict() for c in expansion.collections]
            result.shard = str(shard) if shard else None
            result.selection = list(datasets) or None
            result.policy_override = policy
            if shard is not None:  # merge checks the shards read one inventory
                result.inventory_sha256 = inventory_digest(inventory)
            # -d audits some datasets, not the storage as a whole; of a sharded
            # audit, shard 0 checks coverage (the merged report has it once).
            if not datasets and (shard is None or shard.index == 0):
                checks = check_coverage(full, connections.get)
                remember_uncovered(catalog, checks)
                result.coverage = [c.as_dict() for c in checks]
                result.uncovered = [u.as_dict() for c in checks for u in c.uncovered]
            report_locations(result, full, connections.states(list(full.locations)))
            memory.record_members(catalog.db, expansion.members(names),
                                  iso_time(clock()()) or now_iso())

        try:
            result = auditor.run(names, before_recording)
        finally:
            progress.clear()
        result.history = catalog.recent_runs(HISTORY_RUNS)
        result.catalog, result.catalog_created = os.path.abspath(path), new_catalog
    return result


def check_report_targets(targets: list[ReportTarget], inventory_path: str, state: str,
                         inventory: Inventory | None = None,
                         policies: dict[str, Policy] | None = None) -> None:
    """Before anything is audited: no report may replace the inventory, the
    catalog, a policy file or anything inside a local copy (usage error, exit 2).
    Checked once before loading (reports are written also when loading fails)
    and again with what the inventory names."""
    from .reports.targets import check_not_in_collections, check_not_input, run_inputs

    sources = {p.source for p in (policies or {}).values()}
    inputs = run_inputs(inventory_path, state, inventory, sources)
    try:
        check_not_input(targets, inputs)
        if inventory is not None:
            check_not_in_collections(targets, inventory)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'-o/--output' or '--report'") from None


def shard_state_path(path: str, shard: Shard) -> str:
    """Each shard keeps its own catalog: ``state.sqlite3`` ->
    ``state.shard-0-of-4.sqlite3`` (shards run at once, on other machines)."""
    root, ext = os.path.splitext(path)
    return f"{root}.shard-{shard.index}-of-{shard.count}{ext}"


def other_shard_catalogs(path: str, shard: Shard) -> list[str]:
    """Catalogs beside ``path`` of a shard count other than ``shard``'s."""
    import glob

    root, ext = os.path.splitext(path)
    mine = f".shard-{shard.index}-of-{shard.count}{ext}"
    return sorted(p for p in glob.glob(f"{glob.escape(root)}.shard-*-of-*{glob.escape(ext)}")
                  if not p.endswith(f"-of-{shard.count}{ext}") and not p.endswith(mine))


def inventory_digest(path: str) -> str | None:
    """SHA-256 of the inventory file, if it is one (never opens a FIFO or device)."""
    import hashlib

    from .files import NotReadable, read_regular_file
    from .yamlload import MAX_FILE_BYTES

    try:
        return hashlib.sha256(read_regular_file(path, MAX_FILE_BYTES)).hexdigest()
    except NotReadable:
        return None


def remember_uncovered(catalog: Catalog, checks: list[CoverageCheck]) -> None:
    """Record uncovered folders of complete checks; date every one found."""
    from . import memory
    from .reports.common import iso_time

    now = iso_time(clock()()) or ""
    for check in checks:
        spec, paths = check.spec, [u.path for u in check.uncovered]
        if check.state == "checked":
            first = memory.record_uncovered(catalog.db, spec.location, spec.path, spec.depth,
                                            paths, now)
        else:
            first = memory.since(catalog.db, spec.location, paths)
        for folder in check.uncovered:
            folder.since = first.get(folder.path)


#: Runs of history the HTML report shows.
HISTORY_RUNS = 30


class RunClock:
    """When a run started, to date a report of a run that ended before a verdict."""

    def __init__(self, started_at: str, began: float) -> None:
        self.started_at = started_at
        self.began = began

    @classmethod
    def start(cls) -> RunClock:
        import time

        from .catalog import now_iso
        return cls(now_iso(), time.monotonic())

    def failed(self, inventory: str, message: str, code: int) -> AuditResult:
        """An AuditResult that carries the error instead of verdicts."""
        import socket
        import time

        from .catalog import now_iso
        from .results import AuditResult
        return AuditResult(os.path.abspath(inventory), self.started_at, now_iso(), [],
                           host=socket.gethostname(),
                           duration_seconds=time.monotonic() - self.began,
                           error=message, error_exit_code=code)


def write_reports(targets: list[ReportTarget], result: AuditResult,
                  cause: BaseException | None = None) -> None:
    """Write every target; one that cannot be written does not stop the others,
    and then the run fails with exit 5 (unless it is failing already)."""
    from .reports import FORMATTERS
    from .reports.targets import check_path

    problems = []
    for target in targets:
        try:
            # Again at write time: the path may have become a link or a device since.
            check_path(target.path)
            write_atomically(target.path, FORMATTERS[target.format](result, target.quiet))
        except ValueError as exc:
            problems.append(f"cannot write the {target.format} report: {exc}")
        except OSError as exc:
            problems.append(f"cannot write the {target.format} report {target.path}: "
                            f"{exc.strerror or exc}")
    if problems and cause is None:
        raise ThreeTwoOneError("; ".join(problems))
    for problem in problems:
        click.echo(f"threetwoone: {problem}", err=True)


@main.command()
@click.argument("shard_reports", nargs=-1, required=True, metavar="REPORT.json...",
                type=click.Path(dir_okay=False, path_type=str))
@report_options("the merged report",
                "Also write the merged report in FORMAT to PATH; repeatable.")
@click.option("-q", "--quiet", is_flag=True, help="Print problems only.")
@handle_errors
def merge(shard_reports: tuple[str, ...], fmt: str, output: str | None,
          reports: list[ReportTarget], quiet: bool) -> None:
    """Combine the JSON reports of a sharded audit (audit --shard K/N) into one
    report, and exit with the combined code.

    Exit 5, naming them, when a shard is missing or reported twice, or the
    reports are of different inventories or shard counts: a merged verdict
    must cover every dataset once."""
    from .merge import inventory_order, load_report
    from .merge import merge as merge_reports

    targets, output = report_targets(reports, output, fmt, quiet)
    run = RunClock.start()
    loaded: list[tuple[str, dict[str, Any]]] = []
    try:
        for path in shard_reports:
            loaded.append((path, load_report(path)))
        result = merge_reports(loaded, inventory_order(_static_inventory(loaded[0][1])))
    except Exception as exc:
        outcome = error_outcome(exc)
        if outcome is not None:
            # The merged verdict is unknown: no dashboard may keep an old green.
            inventory = str(loaded[0][1]["inventory"]) if loaded else ""
            write_reports(targets, run.failed(inventory, *outcome), exc)
        raise
    deliver(result, fmt, output, quiet, targets)


def _static_inventory(report: dict[str, Any]) -> Inventory | None:
    """The shards' inventory, if it can still be read as it was (only to order
    the merged datasets as an audit would)."""
    path = str(report["inventory"])
    if report.get("inventory_sha256") and inventory_digest(path) != report["inventory_sha256"]:
        return None
    try:
        return load_inventory(path)
    except ThreeTwoOneError:
        return None


@main.command()
@click.argument("inventory", type=click.Path(path_type=str))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=str),
              help="Write the plan to FILE (atomically) instead of stdout.")
@state_option
@click.option("-d", "--dataset", "datasets", multiple=True, metavar="NAME",
              help="Plan only this dataset (repeatable).")
@click.option("--policy", metavar="NAME|FILE",
              help="Judge every dataset by this policy instead of the inventory's.")
@handle_errors
def plan(inventory: str, fmt: str, output: str | None, state: str | None,
         datasets: tuple[str, ...], policy: str | None) -> None:
    """What to copy where to bring each dataset back to its policy.

    Built from the latest audit in the catalog; touches no storage and runs
    nothing: every action comes with its time over the network and by courier
    and a command (rsync or rclone) to run yourself. Exit codes: 0 nothing to
    do, 1 something to do, 4 invalid inventory or policy, 5 no audit in the
    catalog for a requested dataset (or the tool failed).
    """
    from .catalog import default_state_path, now_iso
    from .repair import render, session
    from .reports.targets import ReportTarget, check_path

    if output == "-":
        output = None
    if output:
        parse_option(check_path, output, "'-o/--output'")
    path = state or default_state_path()
    inv = with_remembered(load_inventory(inventory), path)
    names = select_datasets(inv, datasets)
    inputs = session.PlanInputs(inv, resolve_policies(inv, policy, names), state, path)
    if output:  # never over the inventory, the catalog, a policy file or into a copy
        check_report_targets([ReportTarget(fmt, output)], inventory, path, inv,
                             inputs.policies)
    with session.opened(inputs) as catalog:
        audits, unaudited = session.latest(catalog, names)
        plans = session.make_plans(inputs, catalog, audits, clock())
    if fmt == "json":
        text = render.render_json(plans, os.path.abspath(inventory), os.path.abspath(path),
                                  now_iso(), unaudited)
    else:
        text = render.render_table(plans, unaudited)
    if output:
        write_atomically(output, text)
    else:
        click.echo(text, nl=False)
    if unaudited:
        fail(session.no_audit_message(unaudited, inventory, state), int(ExitCode.TOOL_FAILED))
    sys.exit(0 if all(p.nothing_to_do for p in plans) else 1)


@main.command("plan-files")
@click.argument("inventory", type=click.Path(path_type=str))
@state_option
@click.option("-d", "--dataset", required=True, metavar="NAME", help="The dataset.")
@click.option("--to", "target", metavar="LOCATION:PATH",
              help="The copy repaired or made (as the plan names it).")
@click.option("--from", "source", metavar="LOCATION:PATH",
              help="The intact copy the files come from (as the plan names it).")
@click.option("--lost", is_flag=True, help="The files with no intact copy anywhere.")
@click.option("--lines", is_flag=True,
              help="One name a line (for rclone) instead of NUL-terminated names (rsync "
                   "--from0); a name holding a newline is refused.")
@click.option("--policy", metavar="NAME|FILE", help="As given to threetwoone plan.")
@handle_errors
def plan_files(inventory: str, state: str | None, dataset: str, target: str | None,
               source: str | None, lost: bool, lines: bool, policy: str | None) -> None:
    """Print the files of one action of ``threetwoone plan`` (or the lost ones).

    Names are relative to the copy's folder, exactly as stored (NUL-terminated
    by default), for ``rsync --from0 --files-from=-`` or ``rclone
    --files-from-raw -``; the plan's commands pipe this into them.
    """
    from .catalog import default_state_path
    from .repair import session

    if lost == bool(target or source) or bool(target) != bool(source):
        raise click.UsageError("give --to and --from (one action), or --lost")
    path = state or default_state_path()
    inv = with_remembered(load_inventory(inventory), path)
    [name] = select_datasets(inv, (dataset,))
    inputs = session.PlanInputs(inv, resolve_policies(inv, policy, [name]), state, path)
    end = b"\n" if lines else b"\0"
    out = sys.stdout.buffer
    with session.opened(inputs) as catalog:
        audits, _missing = session.latest(catalog, [name])
        if not audits:
            fail(session.no_audit_message([name], inventory, state),
                 int(ExitCode.TOOL_FAILED))
        planner = session.planner_for(inputs, catalog, clock())
        try:
            names = planner.files(audits[0], target, source)
            for file in names:
                raw = os.fsencode(file)
                if lines and b"\n" in raw:
                    fail(f"a name holds a newline and cannot be listed one a line: "
                         f"{file!r}; copy it on its own", int(ExitCode.FAIL))
                out.write(raw + end)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--to/--from'") from None
    out.flush()


@main.command()
@click.argument("inventory", type=click.Path(path_type=str))
@click.argument("dataset")
@state_option
@lock_option
@handle_errors
def accept(inventory: str, dataset: str, state: str | None, lock_timeout: float) -> None:
    """Adopt DATASET's primary copy, as it is now, as the new reference.

    Use after an intentional change (files added, reprocessed, renamed). The
    primary is read in full; the new reference is recorded with time and user,
    and every copy is compared with it from the next audit on.
    """
    from .audit import AuditOptions, Auditor
    from .catalog import Catalog, current_user, default_state_path, exclusive_lock
    from .catalogerrors import explained
    from .connections import Connections
    from .results import CopyState

    inv = load_inventory(inventory)
    path = state or default_state_path()
    with (explained(path), exclusive_lock(path, lock_timeout), Catalog(path) as catalog,
          Connections() as connections):
        full = expanded(inv, catalog, connections)
        if dataset not in full.datasets:
            select_datasets(full, (dataset,), "'DATASET'")  # says what the inventory has
            raise click.BadParameter(f"{dataset!r} matches several datasets; accept takes "
                                     "one exact name", param_hint="'DATASET'")
        name = dataset
        auditor = Auditor(full, resolve_policies(full, None, [name]), catalog,
                          AuditOptions(clock=clock(), user=current_user()),
                          connections=connections)
        result, reference = auditor.accept(full.datasets[name])
    if reference.manifests and reference.files is not None:
        # The producer manifests stay the reference of the files they name; the
        # others were recorded anew from the primary.
        click.echo(f"{name}: {plural(reference.files.recorded, 'file')} no producer "
                   f"manifest names recorded anew from {result.label}; the primary copy is "
                   f"{result.state.value} against the manifests")
        if result.state is not CopyState.INTACT:
            raise SystemExit(int(ExitCode.FAIL if result.state is CopyState.CORRUPT
                                 else ExitCode.UNKNOWN))
        return
    if result.state is not CopyState.INTACT:
        fail(f"{name}: reference not changed: the primary copy {result.label} is "
             f"{result.state.value} ({result.detail or 'not every file could be read'})",
             int(ExitCode.UNKNOWN))
    click.echo(f"{name}: new reference accepted from {result.label} "
               f"({plural(result.files.present, 'file')}, {plural(result.bytes, 'byte')})")


@main.command()
@click.argument("dataset", required=False)
@state_option
@click.option("-n", "--limit", type=click.IntRange(1), default=30, show_default=True,
              help="Show at most N verdicts.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
@handle_errors
def history(dataset: str | None, state: str | None, limit: int, fmt: str) -> None:
    """Past verdicts, newest first (all datasets, or DATASET)."""
    from .catalog import Catalog, default_state_path
    from .catalogerrors import explained
    from .reports.history import render_history_json, render_history_table

    path = state or default_state_path()
    with explained(path), Catalog(path, create=False) as catalog:
        note_missing_catalog(catalog)
        verdicts = list(catalog.history(dataset, limit))
        reference = catalog.reference_info(dataset) if dataset else None
    if fmt == "json":
        click.echo(render_history_json(verdicts, reference), nl=False)
    elif not verdicts:
        click.echo("no audits recorded" + (f" for {dataset}" if dataset else ""))
    else:
        click.echo(render_history_table(verdicts, reference), nl=False)


@main.command()
@click.argument("inventory", required=False,
                type=click.Path(path_type=str))
@state_option
@click.option("--fixity-interval", default="30d", show_default=True, metavar="DURATION",
              help="The interval to compute what is due against.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
@handle_errors
def status(inventory: str | None, state: str | None, fixity_interval: str, fmt: str) -> None:
    """Per copy: last audit, when it was last fully verified, and what is due.

    Exits 1 when a copy has files not fully verified within the fixity interval,
    is older than its policy's max_age, or (with INVENTORY) was never audited.
    With INVENTORY, policies are the inventory's and its copies never audited
    are listed; without, each dataset's policy is the one of its latest verdict.
    """
    from .catalog import Catalog, default_state_path
    from .catalogerrors import explained
    from .inventory import copy_key
    from .reports.status import (
        exit_code,
        render_status_json,
        render_status_table,
        standings,
    )
    from .schedule import parse_duration

    interval = parse_option(parse_duration, fixity_interval, "'--fixity-interval'")
    now = clock()()
    declared: dict[str, str] = {}
    policies: dict[str, Policy | None] = {}
    if inventory:
        inv = load_inventory(inventory)
        policies.update(resolve_policies(inv, None, list(inv.datasets)))
        declared = {copy_key(name, copy): name for name, dataset in inv.datasets.items()
                    for copy in dataset.copies}
    path = state or default_state_path()
    with explained(path), Catalog(path, create=False) as catalog:
        if not catalog.exists and not inventory:
            # An empty answer would exit 0: a mistyped --state in a monitoring
            # job must not look green.
            raise StateError(f"no state catalog at {path}: nothing to report (check --state "
                             "or $THREETWOONE_STATE, or name the INVENTORY to list its "
                             "copies as never audited)")
        note_missing_catalog(catalog)
        fixity = catalog.copy_status(interval, now)
        recorded = catalog.latest_policies()
    for dataset, name in recorded.items():
        if dataset not in policies:
            policies[dataset] = load_policy(name) if name in builtin_names() else None
    rows = standings(fixity, policies, declared)
    if fmt == "json":
        click.echo(render_status_json(rows, now, interval), nl=False)
    else:
        click.echo(render_status_table(rows, now), nl=False)
    sys.exit(exit_code(rows, now))


@main.command()
@click.argument("inventory", type=click.Path(path_type=str))
@click.option("--policy", metavar="NAME|FILE", help="Also check this policy.")
@handle_errors
def validate(inventory: str, policy: str | None) -> None:
    """Check INVENTORY and its policies without touching any storage."""
    from .feasible import inventory_never_passing
    from .lint import inventory_warnings

    inv = load_inventory(inventory)
    policies = resolve_policies(inv, policy, list(inv.datasets))
    for warning in [*inventory_warnings(inv), *inventory_never_passing(inv, policies)]:
        click.echo(f"threetwoone: warning: {warning}", err=True)
    extra = ""
    if inv.collections:
        extra += (f", {plural(len(inv.collections), 'collection')} (its datasets are found "
                  "when audited; 'threetwoone datasets' lists them)")
    if inv.coverage:
        extra += f", {plural(len(inv.coverage), 'coverage check')}"
    click.echo(f"{inventory}: valid ({plural(len(inv.locations), 'location')}, "
               f"{plural(len(inv.datasets), 'dataset')}{extra})")


@main.command("datasets")
@click.argument("inventory", type=click.Path(path_type=str))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@state_option
@handle_errors
def datasets_command(inventory: str, fmt: str, state: str | None) -> None:
    """List the datasets INVENTORY expands to: declared ones and those its
    collections find (this lists the collections' locations).

    Datasets an earlier audit found whose folder has gone are listed as gone
    (from the catalog, which is only read).  Exit 3 when a collection could
    not be listed in full."""
    from . import memory
    from .catalog import Catalog, default_state_path
    from .connections import Connections
    from .datasetlist import render_datasets
    from .expansion import expand

    inv = load_inventory(inventory)
    policies = resolve_policies(inv, None, [])
    path = state or default_state_path()
    remembered = {}
    if os.path.exists(path):
        with Catalog(path) as catalog:
            remembered = memory.members(catalog.db)
    with Connections() as connections:
        expansion = expand(inv, connections.get, remembered)
    for warning in expansion.warnings:
        warn(warning)
    policies = resolve_policies(expansion.inventory, None, list(expansion.inventory.datasets))
    click.echo(render_datasets(expansion, policies, fmt), nl=False)
    if any(c.state != "listed" for c in expansion.collections):
        sys.exit(int(ExitCode.UNKNOWN))


@main.command()
@click.argument("inventory", type=click.Path(path_type=str))
@click.argument("datasets", nargs=-1, required=True)
@state_option
@lock_option
@handle_errors
def forget(inventory: str, datasets: tuple[str, ...], state: str | None,
           lock_timeout: float) -> None:
    """Forget DATASETS (names or globs) that are no longer in INVENTORY: a
    collection dataset whose folder has gone (it fails with dataset-gone until
    then), or a dataset removed from the inventory.

    Drops the dataset's reference, what its copies last verified and its
    membership of a collection; the history of past runs stays.  A dataset
    still in the inventory is refused (exit 2), and so is one whose collection
    could not be listed in full (exit 3: it cannot be confirmed gone)."""
    from . import memory
    from .catalog import Catalog, default_state_path, exclusive_lock
    from .connections import Connections
    from .expansion import expand
    from .selection import SelectionError, select

    inv = load_inventory(inventory)
    path = state or default_state_path()
    with (exclusive_lock(path, lock_timeout), Catalog(path) as catalog,
          Connections() as connections):
        expansion = expand(inv, connections.get, memory.members(catalog.db))
        full = expansion.inventory
        known = memory.known_datasets(catalog.db)
        unlisted = {c.name: c for c in expansion.collections if c.state != "listed"}

        def why_not(name: str) -> str | None:
            """Why ``name`` cannot be forgotten, or None."""
            dataset = full.datasets.get(name)
            if dataset is None and name in known:
                # One catalog may serve several inventories (the default one does):
                # never drop what another inventory's audits rely on.
                other = memory.last_inventory(catalog.db, name)
                if (other is not None and os.path.isabs(other)
                        and os.path.realpath(other) != os.path.realpath(inventory)):
                    return (f"last audited with another inventory ({other}); forget it "
                            "with that one")
            if dataset is None or dataset.gone is not None:
                return None if name in known else "the catalog knows no such dataset"
            listing = unlisted.get(dataset.collection or "")
            if listing is not None and name in listing.unconfirmed:
                fail(f"{name}: cannot confirm it has gone: collection {listing.name} could "
                     f"not be listed in full ({listing.detail})", int(ExitCode.UNKNOWN))
            return "still in the inventory (its folder is there)"

        names: list[str] = []
        for pattern in datasets:
            candidates = sorted(known | set(full.datasets))
            if pattern in candidates or not any(c in pattern for c in "*?["):
                problem = why_not(pattern)
                if problem:
                    raise click.BadParameter(f"{pattern}: {problem}; forget only drops "
                                             "datasets whose folder has gone or that were "
                                             "removed from the inventory",
                                             param_hint="'DATASETS'")
                names.append(pattern)
                continue
            try:
                matched = select(candidates, [pattern])
            except SelectionError as exc:
                raise click.BadParameter(str(exc), param_hint="'DATASETS'") from None
            names += [name for name in matched if why_not(name) is None]
        forgotten = list(dict.fromkeys(names))
        for name in forgotten:
            memory.forget(catalog.db, name)
    if not forgotten:
        click.echo(f"nothing to forget: no dataset matching {', '.join(datasets)} has gone")
    for name in forgotten:
        click.echo(f"{name}: forgotten (its reference, copy state and collection "
                   "membership; its history stays)")


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
        import textwrap

        click.echo(textwrap.fill(info["description"], width=88,
                                 initial_indent="description: ", subsequent_indent="  "))
    click.echo("rules:")
    for rule in info["rules"]:
        click.echo(f"  - {rule}")
    if info["attested"]:
        click.echo("attested (stated by the standard, not checkable by an audit):")
        for item in info["attested"]:
            click.echo(f"  - {item}")
