"""Policies: what a dataset needs to pass, and the pure evaluation of it
(reading policy files is policyfile.py's job).

A policy file (``policies/*.yaml`` or the user's own) says::

    name: 3-2-1-1-0
    description: ...              # cites the standard the policy checks
    require:                      # thresholds over the copies that count
      copies: 3                   # intact copies, the primary included
      media: 2                    # distinct media among them
      offsite: 1                  # counted copies at a site other than the primary's;
                                  # the counted copies must also span offsite + 1 sites
      sites: 2                    # distinct sites among them
      immutable: 1                # counted copies on immutable or offline locations
      zones: 2                    # distinct disaster-threat zones among them
      locations: 2                # distinct inventory locations among them
      corrupt: 0                  # most corrupt copies tolerated (default 0)
    max_age: 90d                  # a copy counts only if fully verified within this
    repository_counts_offsite: true   # a repository deposit is off-site wherever it is
    allowed:                      # every copy must sit on a location matching one entry
      - {sensitive_ok: true}
    attested:                     # what the standard says and no audit can check
      - restores are tested

Sites, media and zones are compared as ``vocabulary`` says (case, spaces and
punctuation do not count; media synonyms are one type).  Every policy requires at
least one intact copy, and a dataset with no counted copy never passes.

Evaluation takes plain ``CopyView`` values and returns a ``Judgement``; it does
no I/O, so it is tested exhaustively on plain values.  Why a copy does not
count, and which copies a rule counted, are part of the findings: a steward must
be able to act on a failure without reading the JSON.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from .durations import DAY, duration_words
from .states import CopyState, Status
from .vocabulary import is_known_media, media_type, value_key

if TYPE_CHECKING:
    pass

K = TypeVar("K", bound=Hashable)

#: rule -> what it counts, in words.  Every rule but ``corrupt`` is a minimum.
RULES = {
    "copies": "intact copies, the primary included",
    "media": "distinct media types among the counted copies",
    "offsite": "counted copies at a site other than the primary's",
    "sites": "distinct sites among the counted copies",
    "immutable": "counted copies on immutable or offline locations",
    "zones": "distinct disaster-threat zones among the counted copies",
    "locations": "distinct inventory locations among the counted copies",
    "corrupt": "corrupt copies tolerated at most",
}
_SINGULAR = {"copies": "copy", "types": "type", "zones": "zone", "locations": "location",
             "sites": "site"}


def rule_words(rule: str, number: int) -> str:
    """``3 intact copies, ...`` / ``1 intact copy, ...``."""
    text = RULES[rule]
    if number == 1:
        words = text.split(" ")
        for i, word in enumerate(words[:3]):
            if word.rstrip(",") in _SINGULAR:
                words[i] = word.replace(word.rstrip(","), _SINGULAR[word.rstrip(",")])
                break
        text = " ".join(words)
    return f"{number} {text}"

#: Top-level keys of a policy file.
#: Keys an ``allowed`` entry may match on: location attributes (the inventory format's
#: and the policy-library extensions) and the location's own name.
BOOL_ATTRIBUTES = ("sensitive_ok", "immutable", "offline", "repository")
TEXT_ATTRIBUTES = ("zone", "site", "media", "kind", "location")

def format_age(seconds: float) -> str:
    """An age in words that never rounds across a limit: 89.6 days is not "90 days"."""
    days = seconds / DAY
    if days >= 1:
        whole = math.floor(days)
        if days - whole >= 0.05 and whole < 10:
            return f"{days:.1f} days"
        return "1 day" if whole == 1 else f"{whole} days"
    hours = seconds / 3600
    if hours >= 1:
        return f"{math.floor(hours)} hour{'s' if math.floor(hours) != 1 else ''}"
    return "less than an hour"


def _compared(key: str, value: str) -> str:
    """What an ``allowed`` entry and a location compare for ``key``: sites and
    zones by their key, media by type (vocabulary.py); names and kinds exactly."""
    if key == "media":
        return media_type(value)
    return value_key(value) if key in ("site", "zone") else value


@dataclass(frozen=True)
class Placement:
    """One ``allowed`` entry: a location matches when every key matches."""

    match: Mapping[str, Any]

    def matches(self, view: CopyView) -> bool:
        for key, wanted in self.match.items():
            if key in BOOL_ATTRIBUTES:
                if bool(view.attributes.get(key, False)) is not wanted:
                    return False
            else:
                have = view.location if key == "location" else (
                    view.media if key == "media" else view.site if key == "site"
                    else view.attributes.get(key))
                options = wanted if isinstance(wanted, list) else [wanted]
                if not isinstance(have, str) or _compared(key, have) not in {
                        _compared(key, w) for w in options}:
                    return False
        return True

    def words(self) -> str:
        parts = []
        for key, value in self.match.items():
            if isinstance(value, bool):
                parts.append(f"{key}: {'true' if value else 'false'}")
            elif isinstance(value, list):
                parts.append(f"{key} one of {', '.join(map(str, value))}")
            else:
                parts.append(f"{key}: {value}")
        return " and ".join(parts)


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    require: dict[str, int]
    source: str
    attested: tuple[str, ...] = ()
    #: A copy counts only if fully verified within this many seconds.
    max_age: float | None = None
    #: ``max_age`` as written, for messages ("90d").
    max_age_text: str | None = None
    repository_counts_offsite: bool = False
    #: When not empty, every copy must be on a location matching one entry.
    allowed: tuple[Placement, ...] = ()

    def allowed_words(self) -> str:
        return " or ".join(f"({p.words()})" if len(self.allowed) > 1 and len(p.match) > 1
                           else p.words() for p in self.allowed)

    def rules_in_words(self) -> list[str]:
        words = []
        for rule, number in self.require.items():
            if rule == "corrupt":
                words.append(f"at most {number} corrupt copies" if number else
                             "no corrupt copy")
                continue
            text = f"at least {rule_words(rule, number)}"
            if rule == "offsite" and self.repository_counts_offsite:
                text += " (a repository deposit counts as off-site)"
            if rule == "offsite" and number and self.require.get("sites", 0) <= number:
                text += f", the counted copies at {number + 1} distinct sites or more"
                if self.repository_counts_offsite:
                    text += " (a deposit is a site of its own)"
            words.append(text)
        if self.max_age is not None:
            words.append(f"a copy counts only if its content was fully verified within "
                         f"the last {duration_words(self.max_age_text or '')}")
        if self.repository_counts_offsite and "offsite" not in self.require:
            words.append("a repository deposit counts as off-site")
        if self.allowed:
            words.append(f"every copy on a location with {self.allowed_words()}, "
                         "intact or not")
        return words


@dataclass(frozen=True)
class CopyView:
    """What a policy may look at about one copy (no I/O, no backends)."""

    label: str
    location: str
    media: str
    site: str
    offsite: bool
    state: CopyState
    #: Another copy's label when this one is the same storage (it counts once).
    same_as: str | None = None
    #: Why the copy shares stored bytes with an earlier one (hard links): not counted.
    shares_storage: str | None = None
    #: The location's attributes from the inventory (immutable, offline, zone, ...).
    attributes: Mapping[str, Any] = field(default_factory=dict)
    #: When the copy's content was last fully established (oldest file), epoch seconds.
    verified_at: float | None = None

    @property
    def immutable(self) -> bool:
        return self.attributes.get("immutable") is True or self.attributes.get("offline") is True

    @property
    def zone(self) -> str | None:
        zone = self.attributes.get("zone")
        return zone if isinstance(zone, str) and zone else None

    @property
    def zone_key(self) -> str | None:
        return value_key(self.zone) if self.zone else None

    @property
    def site_key(self) -> str:
        return value_key(self.site)

    @property
    def media_type(self) -> str:
        return media_type(self.media)

    @property
    def repository(self) -> bool:
        return self.attributes.get("repository") is True


@dataclass(frozen=True)
class Violation:
    rule: str
    required: int
    found: int
    message: str


@dataclass(frozen=True)
class Counts:
    copies: int
    media: int
    offsite: int
    #: Counted only when the policy has the rule (None: not measured); ``sites``
    #: when it has ``offsite`` or ``sites``.
    sites: int | None = None
    immutable: int | None = None
    zones: int | None = None
    locations: int | None = None

    def as_dict(self) -> dict[str, int]:
        out = {"copies": self.copies, "media": self.media, "offsite": self.offsite}
        for key in ("sites", "immutable", "zones", "locations"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True)
class Judgement:
    status: Status
    counts: Counts
    violations: list[Violation]
    #: Per copy, in the order given: does it count?  (By position: two copies
    #: declared alike have one label.)
    counted: list[bool]
    #: position -> why that copy does not count (only for copies that do not)
    not_counted: dict[int, str]


#: Copies whose content could not be established: they might be intact.
UNDETERMINED = (CopyState.UNREACHABLE, CopyState.ERROR)


def is_offsite(policy: Policy, copy: CopyView) -> bool:
    return copy.offsite or (policy.repository_counts_offsite and copy.repository)


def place_of(policy: Policy | None, copy: CopyView) -> tuple[str, str]:
    """Where ``copy`` stands for the ``sites`` count: its site.  Under a policy
    that counts a repository deposit as off-site wherever it is, a deposit stands
    at a place of its own, apart from every ordinary copy; deposits declared at
    one site are one place."""
    if policy is not None and policy.repository_counts_offsite and copy.repository:
        return ("repository", copy.site_key)
    return ("site", copy.site_key)


def count(copies: Sequence[CopyView], policy: Policy | None = None) -> Counts:
    rules = policy.require if policy else {}
    return Counts(
        copies=len(copies), media=len({c.media_type for c in copies}),
        offsite=sum(1 for c in copies if (is_offsite(policy, c) if policy else c.offsite)),
        sites=(len({place_of(policy, c) for c in copies})
               if "offsite" in rules or "sites" in rules else None),
        immutable=sum(1 for c in copies if c.immutable) if "immutable" in rules else None,
        zones=len({c.zone_key for c in copies if c.zone_key}) if "zones" in rules else None,
        locations=len({c.location for c in copies}) if "locations" in rules else None)


def placement_allowed(policy: Policy, copy: CopyView) -> bool:
    return not policy.allowed or any(p.matches(copy) for p in policy.allowed)


def why_not_counted(policy: Policy, copy: CopyView, now: float) -> str | None:
    """None when ``copy`` counts toward ``policy``; else the reason in words."""
    if copy.same_as:
        return f"same storage as {copy.same_as}"
    if copy.shares_storage:
        return f"it {copy.shares_storage}"
    if copy.state != CopyState.INTACT:
        return f"copy is {copy.state}"
    if not placement_allowed(policy, copy):
        return (f"location {copy.location!r} is not allowed by policy {policy.name} "
                f"(allowed: {policy.allowed_words()})")
    if policy.max_age is not None:
        if copy.verified_at is None:
            return f"never fully verified, policy max_age {policy.max_age_text}"
        age = now - copy.verified_at
        if age > policy.max_age:
            return (f"last full verification {format_age(age)} ago, policy max_age "
                    f"{policy.max_age_text}")
    return None


def _labels(copies: Iterable[CopyView]) -> str:
    names = [c.label for c in copies]
    return ", ".join(names) if names else "none"


def _found_detail(policy: Policy, rule: str, counted: Sequence[CopyView]) -> str:
    """Which counted copies a rule saw, so a failure says where to act."""
    if rule == "copies":
        return f"counted: {_labels(counted)}"
    if rule == "media":
        by = _grouped(counted, lambda c: c.media_type)
        return "; ".join(f"{_media_name(cs[0])}: {_labels(cs)}" for cs in by.values()) \
            or "no counted copy"
    if rule == "offsite":
        off = [c for c in counted if is_offsite(policy, c)]
        text = f"off-site: {_labels(off)}"
        if not policy.repository_counts_offsite and any(
                c.attributes.get("repository") is True for c in counted):
            text += " (this policy does not count a repository deposit as off-site)"
        return text
    if rule == "immutable":
        return f"immutable or offline: {_labels(c for c in counted if c.immutable)}"
    if rule == "sites":
        places = _grouped(counted, lambda c: place_of(policy, c))
        return "; ".join(
            f"{'repository deposit at ' if kind == 'repository' else ''}"
            f"{_spelt(cs[0].site)}: {_labels(cs)}"
            for (kind, _key), cs in places.items()) or "no counted copy"
    if rule == "zones":
        zones = _grouped((c for c in counted if c.zone), lambda c: c.zone_key)
        text = "; ".join(f"zone {_spelt(cs[0].zone or '')}: {_labels(cs)}"
                         for cs in zones.values())
        no_zone = [c for c in counted if not c.zone]
        if no_zone:
            text += ("; " if text else "") + (f"no zone declared (set zone: on the location): "
                                               f"{_labels(no_zone)}")
        return text or "no counted copy"
    if rule == "locations":
        return f"locations: {', '.join(dict.fromkeys(c.location for c in counted)) or 'none'}"
    return ""


def _grouped(copies: Iterable[CopyView], key: Callable[[CopyView], K]
             ) -> dict[K, list[CopyView]]:
    out: dict[K, list[CopyView]] = {}
    for c in copies:
        out.setdefault(key(c), []).append(c)
    return out


def _spelt(value: str) -> str:
    """A value as the inventory spells it, minus stray spaces."""
    return " ".join(value.split())


def _media_name(copy: CopyView) -> str:
    return copy.media_type if is_known_media(copy.media) else _spelt(copy.media)


def minimums(policy: Policy, counts: Mapping[str, int]) -> dict[str, int]:
    """The minimums ``policy`` sets, as evaluated: at least 1 copy whatever the
    policy says (a dataset with no counted copy never passes), and an off-site
    rule met by copies' flags also needs ``offsite + 1`` distinct sites, so that
    copies all standing at one site never pass it, even when the primary they
    were measured from is gone or corrupt.  (When the flags already fall short,
    the ``offsite`` violation says it all.)"""
    out = {"copies": 1}
    for rule, required in policy.require.items():
        if rule != "corrupt":
            out[rule] = max(out.get(rule, 0), required)
    offsite = out.get("offsite", 0)
    if offsite and counts["offsite"] >= offsite and out.get("sites", 0) < offsite + 1:
        out["sites"] = offsite + 1
    return out


def evaluate(policy: Policy, counted: Sequence[CopyView], corrupt: int,
             misplaced: Sequence[CopyView] = ()) -> list[Violation]:
    """The rules of ``policy`` that ``counted`` copies (and ``corrupt`` corrupt
    ones, and ``misplaced`` copies on locations the policy does not allow) break."""
    counts = count(counted, policy).as_dict()
    violations = []
    if misplaced:
        violations.append(Violation(
            "allowed", 0, len(misplaced),
            f"{len(misplaced)} cop{'y' if len(misplaced) == 1 else 'ies'} on locations "
            f"policy {policy.name} does not allow: "
            f"{', '.join(f'{c.label} ({c.state})' for c in misplaced)}; allowed: "
            f"{policy.allowed_words()}. Placement applies to every copy, intact or not: "
            "move the data and remove the copy from the inventory"))
    for rule, required in minimums(policy, counts).items():
        have = counts[rule]
        if have >= required:
            continue
        detail = _found_detail(policy, rule, counted)
        message = f"found {have}, policy requires {rule_words(rule, required)}"
        if rule == "sites" and required > policy.require.get("sites", 0):
            offsite = policy.require["offsite"]
            message += (f" ({offsite} off-site cop{'y needs' if offsite == 1 else 'ies need'}"
                        f" the counted copies at "
                        f"{required} sites, whatever became of the primary); counted "
                        f"copies stand at {have} site{'' if have == 1 else 's'} ({detail})")
        elif detail:
            message += f" ({detail})"
        violations.append(Violation(rule, required, have, message))
    allowed = policy.require.get("corrupt", 0)
    if corrupt > allowed:
        violations.append(Violation(
            "corrupt", allowed, corrupt,
            f"{corrupt} corrupt cop{'y' if corrupt == 1 else 'ies'}, policy allows {allowed}"))
    return violations


def judge(policy: Policy, copies: Sequence[CopyView], now: float) -> Judgement:
    """Count the copies and give the dataset its status (README "Verdicts"):
    ``fail`` when the policy is not met even if every undetermined copy were
    intact; ``unknown`` when it is met only if some of them are; else ``pass``.

    An undetermined copy that turned out intact would have been verified now, so
    ``max_age`` does not hold it back; a placement rule does."""
    reasons = [why_not_counted(policy, c, now) for c in copies]
    counted = [c for c, reason in zip(copies, reasons, strict=True) if reason is None]
    maybe = [c for c in copies if not c.same_as and not c.shares_storage
             and c.state in UNDETERMINED and placement_allowed(policy, c)]
    corrupt = sum(1 for c in copies if c.state == CopyState.CORRUPT and not c.same_as)
    misplaced = [c for c in copies if not placement_allowed(policy, c)]
    violations = evaluate(policy, counted, corrupt, misplaced)
    if evaluate(policy, counted + maybe, corrupt, misplaced):
        status = Status.FAIL
    elif violations:
        status = Status.UNKNOWN
    else:
        status = Status.PASS
    return Judgement(status=status, counts=count(counted, policy), violations=violations,
                     counted=[reason is None for reason in reasons],
                     not_counted={i: r for i, r in enumerate(reasons) if r is not None})


def describe(policy: Policy) -> dict[str, Any]:
    return {"name": policy.name, "description": policy.description,
            "require": dict(policy.require), "max_age": policy.max_age_text,
            "repository_counts_offsite": policy.repository_counts_offsite,
            "allowed": [dict(p.match) for p in policy.allowed],
            "rules": policy.rules_in_words(),
            "attested": list(policy.attested), "source": policy.source}
