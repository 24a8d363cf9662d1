"""What to do next, in words: one short next step for every copy that is not
intact and for every violation, so a report read at 7 a.m. says how to act
(mount the disk, trust the host key with this command, re-sync from that copy,
``accept`` an intentional change, add a copy at another site).

Pure: it reads a judged DatasetResult and the inventory, and fills in
``CopyResult.next_step`` and ``DatasetResult.next_steps``; it touches nothing.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import offline
from .inventory import Dataset, Inventory, Location
from .pathnames import display
from .reports.common import iso_time
from .results import CopyResult, CopyState, DatasetResult, Verification
from .vocabulary import media_type, value_key
from .words import plural


@dataclass(frozen=True)
class Commands:
    """How to spell a threetwoone command for this run (inventory, catalog)."""

    inventory: str
    #: ``--state PATH`` when the run used a catalog other than the default.
    state: str | None = None

    def accept(self, dataset: str) -> str:
        return self._command("accept", dataset)

    def forget(self, dataset: str) -> str:
        return self._command("forget", dataset)

    def _command(self, verb: str, dataset: str) -> str:
        state = f" --state {shlex.quote(self.state)}" if self.state else ""
        return (f"threetwoone {verb} {shlex.quote(self.inventory)} "
                f"{shlex.quote(dataset)}{state}")


def annotate(result: DatasetResult, dataset: Dataset, inventory: Inventory,
             commands: Commands, invalid: Sequence[str] = ()) -> None:
    """Give every copy that is not intact, and every violation, its next step.
    ``invalid``: why the producer's reference is unusable (reference.Invalid kinds)."""
    source = _source(result)
    for copy in result.copies:
        copy.next_step = copy_step(copy, result, inventory.locations[copy.location], source,
                                   commands)
    for violation in result.violations:
        step = (reference_step(invalid) if violation.rule == "reference" else
                violation_step(violation.rule, violation.required, violation.found, result,
                               dataset, inventory, commands))
        if step:
            result.next_steps.setdefault(violation.rule, step)
    primary = next((c for c in result.copies if c.primary), None)
    if primary and primary.files.extra and result.reference in ("primary", "accepted"):
        result.warnings.append(
            f"if the {plural(primary.files.extra, 'file')} not in the reference were added to "
            f"the primary on purpose, `{commands.accept(result.name)}` records them (it "
            "reads the primary in full and makes its current content the reference)")


def _source(result: DatasetResult) -> CopyResult | None:
    """The copy to repair others from: an intact one, the primary first."""
    intact = [c for c in result.copies if c.state is CopyState.INTACT and not c.same_as]
    intact.sort(key=lambda c: not c.primary)
    return intact[0] if intact else None


def _from(source: CopyResult | None, copy: CopyResult) -> str:
    if source is None or source is copy:
        return ("no intact copy is left to copy from: recover the files from the producer "
                "or an older backup")
    return f"re-sync it from {display(source.label)}"


def copy_step(copy: CopyResult, result: DatasetResult, location: Location,
              source: CopyResult | None, commands: Commands) -> str | None:
    """The next step for one copy, or None when there is nothing to do."""
    state = copy.state
    if copy.same_as:
        return None
    if copy.verification is Verification.REMEMBERED:
        limit = offline.max_age(location)
        until = iso_time(copy.verified_at + limit) if copy.verified_at and limit else None
        return (f"plug the disk in (mount {location.root}) and audit "
                + (f"before {until}, when its remembered state expires" if until else "again"))
    if state is CopyState.INTACT:
        if not copy.overdue_held:
            return None
        return ("let the fixity schedule catch up: raise --max-read or --time-limit, or "
                f"audit with --verify full -d {shlex.quote(result.name)} once")
    if state is CopyState.INCOMPLETE:
        return f"{_from(source, copy)} ({plural(copy.files.missing, 'file')} missing)"
    if state is CopyState.CORRUPT:
        return _corrupt_step(copy, result, source, commands)
    if state is CopyState.OUTDATED:
        count = copy.files.outdated
        return (f"{_from(source, copy)}: {plural(count, 'file')} still "
                f"{'holds' if count == 1 else 'hold'} the content from before the "
                "reference was replaced (accept)")
    if state is CopyState.MISSING:
        return (f"the folder {display(copy.path)} is not on {copy.location}: "
                f"{_from(source, copy)}, or correct the copy's path in the inventory")
    if state is CopyState.UNREACHABLE:
        return unreachable_step(copy.detail or "", location)
    # CopyState.ERROR: reachable, but not everything could be read.
    if result.reference == "none":
        if copy.primary:
            return ("make the primary copy readable (see its detail), then audit again: "
                    "no reference can be recorded before")
        return "nothing to compare with yet: fix the primary copy first (see its detail)"
    unreadable = copy.files.unreadable
    what = plural(unreadable, "file") if unreadable else "some files or folders"
    return (f"make {what} readable to the account that runs the audit, or check "
            f"{copy.location} for I/O errors; then audit again")


def _corrupt_step(copy: CopyResult, result: DatasetResult, source: CopyResult | None,
                  commands: Commands) -> str:
    count = plural(copy.files.corrupt, "file")
    if copy.primary and result.reference in ("primary", "accepted"):
        return (f"if the primary was changed on purpose, run `{commands.accept(result.name)}`:"
                " it reads the primary in full and records its current content as the "
                "reference; copies not yet re-synced from it then show as outdated, not "
                f"corrupt; if not, restore the {count} "
                f"from {_from_label(source, copy)}")
    if copy.primary and result.reference == "manifest":
        return (f"the primary differs from the producer's manifests: restore the {count} "
                f"from {_from_label(source, copy)}, or ask the producer for corrected "
                "manifests")
    return f"{_from(source, copy)} ({count} corrupt)"


def _from_label(source: CopyResult | None, copy: CopyResult) -> str:
    if source is None or source is copy:
        return "the producer or an older backup (no intact copy is left)"
    return f"the intact copy {display(source.label)}"


#: The command an SSH host-key refusal tells the user to run.
_KEYSCAN = re.compile(r"(ssh-keyscan [^;]*?>> \S+)")


def unreachable_step(detail: str, location: Location) -> str:
    """What to do about a location that could not be reached, from why not."""
    if location.kind == "local":
        return (f"mount the disk or share at {location.root} (or correct the location's "
                "root), then audit again")
    if location.kind == "sftp":
        scan = _KEYSCAN.search(detail)
        if "CHANGED" in detail:
            return ("the host key changed: confirm the new fingerprint with the host's "
                    "administrator before trusting it (see the detail for the commands)")
        if scan:
            return ("check the host key's fingerprint (in the detail) with the host's "
                    f"administrator, then trust it: {scan.group(1)}")
        if "auth" in detail.lower():
            return (f"let this account log in to {location.attribute('host')} with a key "
                    "(identity_file or ssh-agent), then audit again")
        return f"check that {location.attribute('host')} is up and reachable from here"
    if location.kind == "webdav":
        if re.search(r"\b40[13]\b|auth", detail, re.IGNORECASE):
            return ("renew the credentials the location's auth names (token or "
                    "certificate), then audit again")
        return f"check that {location.attribute('url')} is up and reachable from here"
    if location.kind == "s3":
        if re.search(r"credential|AccessDenied|403|signature", detail, re.IGNORECASE):
            return ("check the AWS credentials (environment, profile) and that they may "
                    f"list and read bucket {location.attribute('bucket')}")
        return f"check that the S3 endpoint of bucket {location.attribute('bucket')} is reachable"
    return "check that the location is reachable from here, then audit again"


#: The next step for a producer reference that cannot be used, by what is wrong.
_REFERENCE_STEPS = {
    "bag": ("have the bag on the primary repaired or made again by the tool that made it "
            "(bagit.py --validate names the same faults), its manifests only from a payload "
            "known to be good"),
    "conflict": ("ask the producer which checksum is right and have the manifest corrected "
                 "(or leave the wrong manifest out of checksums:)"),
    "outside": ("remove the names' prefix with strip:, or set paths: to the folder they are "
                "relative to, or have the manifest corrected"),
}


def reference_step(invalid: Sequence[str]) -> str:
    """What to do about a producer reference that cannot be used (the violation's
    message says why): one step per kind of fault, then audit again."""
    steps = [_REFERENCE_STEPS[kind] for kind in invalid if kind in _REFERENCE_STEPS]
    if not steps:
        steps = ["have the producer's checksum files corrected"]
    return "; ".join(steps) + ", then audit again"


def first_copies(required: int, spread: str) -> str:
    """The goal of a spread rule (media, sites, locations) when no copy counts
    yet: "get intact copies on 2 kinds of media", never "other than" nothing."""
    return "get an intact copy" if required <= 1 else f"get intact copies {spread}"


def violation_step(rule: str, required: int, found: int, result: DatasetResult,
                   dataset: Dataset, inventory: Inventory, commands: Commands) -> str | None:
    """The next step for one broken rule, naming the copies to repair or the
    locations to add a copy on where that helps."""
    missing = max(required - found, 1)
    counted = [c for c in result.copies if c.counted]
    locations = inventory.locations

    def where(qualifies: Callable[[Location], bool]) -> str:
        repair = [display(c.label) for c in result.copies
                  if not c.counted and not c.same_as and qualifies(locations[c.location])]
        used = {c.location for c in dataset.copies}
        fresh = [n for n, loc in locations.items() if n not in used and qualifies(loc)]
        parts = []
        if repair:
            parts.append("repair " + ", ".join(repair))
        if fresh:
            parts.append("add one on " + ", ".join(fresh[:3]) + (" ..." if len(fresh) > 3
                                                                  else ""))
        if not parts:
            return ": no location in the inventory qualifies yet, add one"
        return ": " + ", or ".join(parts)

    if rule == "copies":
        more = "more " if counted else ""
        return (f"get {plural(missing, more + 'intact copy', more + 'intact copies')}"
                + where(lambda loc: True))
    if rule == "media":
        if not counted:
            return (first_copies(required, f"on {required} kinds of media")
                    + where(lambda loc: True))
        have = {media_type(c.media) for c in counted}
        return ("put a copy on another kind of media than " + ", ".join(sorted(have))
                + where(lambda loc: media_type(loc.media) not in have))
    if rule in ("offsite", "sites"):
        if rule == "sites" and not counted:
            return first_copies(required, f"at {required} sites") + where(lambda loc: True)
        primary = locations[dataset.primary.location]
        spelt = {value_key(c.site): c.site for c in counted}
        spelt.setdefault(value_key(primary.site), primary.site)
        other = f"at a site other than {', '.join(spelt.values())}"
        goal = (f"add a copy {other}" if counted else
                f"get {plural(required, 'intact copy', 'intact copies')} {other} (the primary's)")
        return goal + where(lambda loc: value_key(loc.site) not in spelt)
    if rule == "zones":
        return "add a copy in another disaster-threat zone (set zone: on each location)"
    if rule == "immutable":
        return ("add a copy on an immutable or offline location (object lock, WORM tape, a "
                "disk kept unplugged)" + where(lambda loc: bool(
                    loc.attribute("immutable") or loc.attribute("offline"))))
    if rule == "locations":
        if not counted:
            return (first_copies(required, f"on {required} locations")
                    + where(lambda loc: True))
        have_locations = {c.location for c in counted}
        return ("add a copy on another location"
                + where(lambda loc: loc.name not in have_locations))
    if rule == "corrupt":
        return "repair the corrupt copies (each copy's next step says how)"
    if rule == "allowed":
        return "move the data to an allowed location and remove the copy from the inventory"
    if rule == "dataset-gone":
        return f"if the dataset was removed on purpose, run `{commands.forget(result.name)}`"
    return None
