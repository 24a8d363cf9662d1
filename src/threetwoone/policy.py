"""Policies: what a dataset needs to pass, and the pure evaluation of it.

A policy file (``policies/*.yaml`` or the user's own) says::

    name: 3-2-1
    description: ...
    require: {copies: 3, media: 2, offsite: 1, corrupt: 0}

Evaluation takes the copies that count (intact, de-duplicated) and returns
violations; it does no I/O, so it is tested exhaustively on plain values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from .errors import ConfigError, ConfigErrors
from .yamlload import Document, join, load_file

#: rule -> (what it counts, in words)
RULES = {
    "copies": "intact copies, the primary included",
    "media": "distinct media types among the intact copies",
    "offsite": "intact copies at a site other than the primary's",
    "corrupt": "corrupt copies tolerated at most",
}


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    require: dict[str, int]
    source: str
    attested: tuple[str, ...] = ()

    def rules_in_words(self) -> list[str]:
        words = []
        for rule, number in self.require.items():
            if rule == "corrupt":
                words.append(f"at most {number} corrupt copies" if number else
                             "no corrupt copy")
            else:
                words.append(f"at least {number} {RULES[rule]}")
        return words


@dataclass(frozen=True)
class CopyView:
    """What a policy may look at about one copy (no I/O, no backends)."""

    label: str
    location: str
    media: str
    site: str
    offsite: bool
    #: intact | incomplete | corrupt | missing | unreachable | error
    state: str
    #: Another copy's label when this one is the same storage (it counts once).
    same_as: str | None = None
    #: The location's attributes from the inventory (immutable, offline, zone, ...).
    attributes: Mapping[str, Any] = field(default_factory=dict)
    #: When the copy's content was last fully established (oldest file), epoch seconds.
    verified_at: float | None = None


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

    def as_dict(self) -> dict[str, int]:
        return {"copies": self.copies, "media": self.media, "offsite": self.offsite}


@dataclass(frozen=True)
class Judgement:
    status: str  # pass | fail | unknown
    counts: Counts
    violations: list[Violation]
    #: label -> counted?
    counted: dict[str, bool]
    #: label -> why it does not count (only for copies that do not)
    not_counted: dict[str, str]


#: Copies whose content could not be established: they might be intact.
UNDETERMINED = ("unreachable", "error")


def count(copies: Sequence[CopyView]) -> Counts:
    return Counts(copies=len(copies), media=len({c.media for c in copies}),
                  offsite=sum(1 for c in copies if c.offsite))


def why_not_counted(policy: Policy, copy: CopyView, now: float) -> str | None:
    """None when ``copy`` counts toward ``policy``; else the reason in words."""
    if copy.same_as:
        return f"same storage as {copy.same_as}"
    if copy.state != "intact":
        return f"copy is {copy.state}"
    return None


def evaluate(policy: Policy, counted: Sequence[CopyView], corrupt: int) -> list[Violation]:
    """The rules of ``policy`` that ``counted`` copies (and ``corrupt`` corrupt
    ones) break."""
    counts = count(counted)
    found = {"copies": counts.copies, "media": counts.media, "offsite": counts.offsite}
    violations = []
    for rule, required in policy.require.items():
        if rule == "corrupt":
            if corrupt > required:
                violations.append(Violation(
                    "corrupt", required, corrupt,
                    f"{corrupt} corrupt cop{'y' if corrupt == 1 else 'ies'}, "
                    f"policy allows {required}"))
            continue
        have = found[rule]
        if have < required:
            violations.append(Violation(
                rule, required, have,
                f"found {have}, policy requires {required} {RULES[rule]}"))
    return violations


def judge(policy: Policy, copies: Sequence[CopyView], now: float) -> Judgement:
    """Count the copies and give the dataset its status (DESIGN.md):
    ``fail`` when the policy is not met even if every undetermined copy were
    intact; ``unknown`` when it is met only if some of them are; else ``pass``."""
    reasons = {c.label: why_not_counted(policy, c, now) for c in copies}
    counted = [c for c in copies if reasons[c.label] is None]
    maybe = [c for c in copies if not c.same_as and c.state in UNDETERMINED]
    corrupt = sum(1 for c in copies if c.state == "corrupt" and not c.same_as)
    violations = evaluate(policy, counted, corrupt)
    if evaluate(policy, counted + maybe, corrupt):
        status = "fail"
    elif violations:
        status = "unknown"
    else:
        status = "pass"
    return Judgement(status=status, counts=count(counted), violations=violations,
                     counted={c.label: reasons[c.label] is None for c in copies},
                     not_counted={k: v for k, v in reasons.items() if v is not None})


# -- loading -----------------------------------------------------------------

POLICY_KEYS = {"name", "description", "require", "attested"}


def builtin_names() -> list[str]:
    folder = resources.files("threetwoone") / "policies"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _builtin_path(name: str) -> str | None:
    candidate = resources.files("threetwoone") / "policies" / f"{name}.yaml"
    return str(candidate) if candidate.is_file() else None


def _validate(doc: Document, fallback_name: str) -> Policy:
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error("", "a policy must be a mapping with 'name' and 'require'")
    errors: list[ConfigError] = []
    for key in data:
        if key not in POLICY_KEYS:
            errors.append(doc.error(join("", key), f"unknown key {key!r} (expected one of: "
                                                   f"{', '.join(sorted(POLICY_KEYS))})"))
    require = data.get("require")
    parsed: dict[str, int] = {}
    if not isinstance(require, dict):
        errors.append(doc.error("require", "missing or not a mapping of rule: number"))
    else:
        for rule, value in require.items():
            keypath = join("require", rule)
            if rule not in RULES:
                errors.append(doc.error(keypath, f"unknown rule {rule!r} (expected one of: "
                                                 f"{', '.join(RULES)})"))
            elif not isinstance(value, int) or isinstance(value, bool) or value < 0:
                errors.append(doc.error(keypath, "must be a whole number >= 0"))
            else:
                parsed[rule] = value
    attested = data.get("attested", [])
    if not isinstance(attested, list) or not all(isinstance(a, str) for a in attested):
        errors.append(doc.error("attested", "must be a list of criteria in words"))
        attested = []
    for key in ("name", "description"):
        if key in data and not isinstance(data[key], str):
            errors.append(doc.error(key, "must be a string"))
    if errors:
        raise ConfigErrors(errors)
    parsed.setdefault("corrupt", 0)  # every policy: a corrupt copy fails, unless it says
    return Policy(name=str(data.get("name", fallback_name)),
                  description=str(data.get("description", "")).strip(),
                  require=parsed, source=doc.file, attested=tuple(attested))


def load_policy(spec: str, base_folder: str | None = None) -> Policy:
    """Load a built-in policy by name, or a policy file by path (relative paths
    resolve against ``base_folder``, the inventory's folder)."""
    builtin = _builtin_path(spec) if "/" not in spec and not spec.endswith(
        (".yaml", ".yml")) else None
    if builtin:
        return _validate(load_file(builtin), spec)
    path = os.path.expanduser(spec)
    if base_folder and not os.path.isabs(path) and not os.path.exists(path):
        path = os.path.join(base_folder, path)
    if not os.path.exists(path):
        raise ConfigError(spec, None, "", f"no built-in policy or policy file named {spec!r} "
                                          f"(built-in: {', '.join(builtin_names())})")
    return _validate(load_file(path), os.path.basename(spec).rsplit(".", 1)[0])


def describe(policy: Policy) -> dict[str, Any]:
    return {"name": policy.name, "description": policy.description,
            "require": dict(policy.require), "rules": policy.rules_in_words(),
            "attested": list(policy.attested), "source": policy.source}
