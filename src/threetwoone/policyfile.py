"""Policy files: the built-in ones (``policies/*.yaml``) and a user's own,
read and validated into the :class:`~.policy.Policy` model, and the policy
each dataset of an inventory is judged by.  Every error of a file is collected
with its file, line and key path; the model itself (policy.py) does no I/O.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .durations import parse_duration
from .errors import ConfigError, ConfigErrors
from .policy import BOOL_ATTRIBUTES, RULES, TEXT_ATTRIBUTES, Placement, Policy
from .yamlload import Document, join, load_file

if TYPE_CHECKING:
    from .inventory import Inventory

POLICY_KEYS = ("name", "description", "require", "max_age", "repository_counts_offsite",
               "allowed", "attested")



#: The built-in policies, installed next to this module (a plain path, not
#: importlib.resources: that import alone costs more than loading a policy).
_BUILTIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policies")


def builtin_names() -> list[str]:
    return sorted(name[:-5] for name in os.listdir(_BUILTIN) if name.endswith(".yaml"))


def _builtin_path(name: str) -> str | None:
    candidate = os.path.join(_BUILTIN, f"{name}.yaml")
    return candidate if os.path.isfile(candidate) else None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class _PolicyValidator:
    """Collects every error of one policy file, each with file:line: keypath."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.errors: list[ConfigError] = []

    def error(self, keypath: str, message: str) -> None:
        self.errors.append(self.doc.error(keypath, message))

    def require(self, require: Any) -> dict[str, int]:
        parsed: dict[str, int] = {}
        if not isinstance(require, dict):
            self.error("require", "missing or not a mapping of rule: number")
            return parsed
        for rule, value in require.items():
            keypath = join("require", rule)
            if rule in ("max_age", "repository_counts_offsite", "allowed"):
                self.error(keypath, f"{rule!r} is a top-level policy key, not a rule under "
                                    "'require'")
            elif rule not in RULES:
                self.error(keypath, f"unknown rule {rule!r} (expected one of: "
                                    f"{', '.join(RULES)})")
            elif not _is_count(value):
                self.error(keypath, "must be a whole number >= 0")
            elif rule == "copies" and value == 0:
                self.error(keypath, "must be 1 or more: a policy must require at least 1 "
                                    "intact copy")
            else:
                parsed[rule] = value
        if "copies" not in require:
            self.error("require", "a policy must require at least 1 intact copy (add "
                                  "copies: 1 or more)")
        return parsed

    def max_age(self, value: Any) -> tuple[float | None, str | None]:
        if value is None:
            return None, None
        try:
            seconds = parse_duration(value) if isinstance(value, str) else None
        except ValueError:
            seconds = None
        if seconds is None or seconds <= 0:
            self.error("max_age", "must be a positive duration: a number followed by "
                                  "m, h, d, w or y (e.g. 90d)")
            return None, None
        return seconds, str(value).strip()

    def allowed(self, value: Any) -> tuple[Placement, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not value:
            self.error("allowed", "must be a non-empty list of location matches, e.g. "
                                  "[{sensitive_ok: true}]")
            return ()
        out = []
        known = (*BOOL_ATTRIBUTES, *TEXT_ATTRIBUTES)
        for index, entry in enumerate(value):
            keypath = join("allowed", index)
            if not isinstance(entry, dict) or not entry:
                self.error(keypath, "must be a non-empty mapping of location attribute: "
                                    "value")
                continue
            good = True
            for key, wanted in entry.items():
                child = join(keypath, key)
                if key in BOOL_ATTRIBUTES:
                    if not isinstance(wanted, bool):
                        self.error(child, "must be true or false")
                        good = False
                elif key in TEXT_ATTRIBUTES:
                    ok = (isinstance(wanted, str) and wanted) or (
                        isinstance(wanted, list) and wanted
                        and all(isinstance(w, str) and w for w in wanted))
                    if not ok:
                        self.error(child, "must be a non-empty string or list of strings")
                        good = False
                else:
                    self.error(child, f"unknown location attribute {key!r} (expected one "
                                      f"of: {', '.join(known)})")
                    good = False
            if good:
                out.append(Placement(dict(entry)))
        return tuple(out)

    def policy(self, fallback_name: str) -> Policy:
        data = self.doc.data
        if not isinstance(data, dict):
            raise self.doc.error("", "a policy must be a mapping with 'name' and 'require'")
        for key in data:
            if key not in POLICY_KEYS:
                self.error(join("", key), f"unknown key {key!r} (expected one of: "
                                          f"{', '.join(sorted(POLICY_KEYS))})")
        parsed = self.require(data.get("require"))
        max_age, max_age_text = self.max_age(data.get("max_age"))
        repo = data.get("repository_counts_offsite", False)
        if not isinstance(repo, bool):
            self.error("repository_counts_offsite", "must be true or false")
            repo = False
        allowed = self.allowed(data.get("allowed"))
        attested = data.get("attested", [])
        if not isinstance(attested, list) or not all(isinstance(a, str) and a.strip()
                                                      for a in attested):
            self.error("attested", "must be a list of criteria in words")
            attested = []
        for key in ("name", "description"):
            if key in data and not (isinstance(data[key], str) and data[key].strip()):
                self.error(key, "must be a non-empty string")
        if self.errors:
            raise ConfigErrors(self.errors)
        parsed.setdefault("corrupt", 0)  # every policy: a corrupt copy fails, unless it says
        return Policy(name=str(data.get("name", fallback_name)),
                      description=" ".join(str(data.get("description", "")).split()),
                      require=parsed, source=self.doc.file,
                      attested=tuple(" ".join(a.split()) for a in attested),
                      max_age=max_age, max_age_text=max_age_text,
                      repository_counts_offsite=repo, allowed=allowed)


def _validate(doc: Document, fallback_name: str) -> Policy:
    return _PolicyValidator(doc).policy(fallback_name)


def load_policy(spec: str, base_folder: str | None = None,
                where: tuple[Document, str] | None = None) -> Policy:
    """Load a built-in policy by name, or a policy file by path.  A relative
    path resolves against ``base_folder`` (the inventory's folder, for a policy
    an inventory names) and only there: the same inventory must give the same
    verdict from any working directory.  Without ``base_folder`` (``--policy``
    on the command line) it resolves against the working directory, as any
    command-line path does.  ``where`` is the inventory document and key path
    that named ``spec``, for the error."""
    builtin = _builtin_path(spec) if "/" not in spec and not spec.endswith(
        (".yaml", ".yml")) else None
    if builtin:
        return _validate(load_file(builtin), spec)
    path = os.path.expanduser(spec)
    if base_folder and not os.path.isabs(path):
        path = os.path.join(base_folder, path)
    if not os.path.exists(path):
        looked = f"; no file {path}" if path != spec else ""
        message = (f"no built-in policy or policy file named {spec!r} "
                   f"(built-in: {', '.join(builtin_names())}{looked})")
        if where:
            raise where[0].error(where[1], message)
        raise ConfigError(spec, None, "", message)
    return _validate(load_file(path), os.path.basename(spec).rsplit(".", 1)[0])


def resolve_policies(inventory: Inventory, override: str | None, datasets: Sequence[str],
                     default: str = "3-2-1") -> dict[str, Policy]:
    """The policy of each dataset: ``override`` (--policy), else the dataset's
    ``policy:``, else its class's (``policies:`` map), else the inventory's
    ``policy:``, else ``default``.  Each policy is loaded once.

    The whole inventory is checked on every run, whatever ``datasets`` selects:
    a ``class:`` missing from the ``policies:`` map, or a policy named anywhere
    (the top-level ``policy:``, the ``policies:`` map, any dataset's ``policy:``)
    that does not load, is an error (exit 4).  A typo there would otherwise
    silently judge raw data by a looser policy on the nights it is selected."""
    doc = inventory.document
    errors: list[ConfigError] = []
    # Where each dataset's settings are written: declared datasets, and each
    # collection once (its datasets share its settings).
    declared = [(d.keypath, d.cls, d.policy) for d in inventory.datasets.values()
                if d.collection is None]
    declared += [(f"collections.{c.name}", c.cls, c.policy)
                 for c in inventory.collections.values()]
    for where, cls, _policy in declared:
        if cls is not None and cls not in inventory.class_policies:
            keypath = f"{where}.class"
            known = ", ".join(inventory.class_policies) or "none; add a top-level policies: map"
            message = f"unknown class {cls!r} (classes in policies: {known})"
            errors.append(doc.error(keypath, message) if doc else
                          ConfigError(inventory.path, None, keypath, message))
    named = [(inventory.policy, "policy")] if inventory.policy else []
    named += [(spec, f"policies.{cls}") for cls, spec in inventory.class_policies.items()]
    named += [(policy, f"{where}.policy") for where, _cls, policy in declared if policy]
    # A policy file the inventory names resolves against the inventory's folder;
    # --policy, a command-line path, against the working directory (base None).
    loaded: dict[tuple[str, str | None], Policy] = {}
    for spec, keypath in [*named, *([(override, "")] if override else [])]:
        base = inventory.folder if keypath else None
        if (spec, base) in loaded:
            continue
        try:
            loaded[spec, base] = load_policy(spec, base,
                                             (doc, keypath) if doc and keypath else None)
        except ConfigErrors as exc:
            errors.extend(e for e in exc.errors if str(e) not in map(str, errors))
        except ConfigError as exc:
            errors.append(exc)
    if errors:
        raise ConfigErrors(errors)
    out = {}
    for name in datasets:
        dataset = inventory.datasets[name]
        if override:
            spec = override
        elif dataset.policy:
            spec = dataset.policy
        elif dataset.cls:
            spec = inventory.class_policies[dataset.cls]
        else:
            spec = inventory.policy or default
        key = (spec, None if override else inventory.folder)
        if key not in loaded:
            loaded[key] = load_policy(spec, inventory.folder)
        out[name] = loaded[key]
    return out
