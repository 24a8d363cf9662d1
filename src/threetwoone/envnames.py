"""How messages name the environment variable a ``*_env`` key points to.

An inventory names the variable that holds a secret (``token_env: DAV_TOKEN``),
never the secret.  A value that cannot be a variable's name is refused at load
without being shown (inventory._env_name); but a token or password made only of
letters, digits and ``_`` (a GitHub ``ghp_...`` token, a random password) is a
valid name, and a user who pasted it there would find it echoed by "environment
variable ... is not set", in the output, the logs and the reports.

Names are written by people: words in one case (``DAV_TOKEN``, ``dav_token``) or
camelCase (``davToken``), a short number at a word's end (``S3``, ``V2``,
``PASSWORD2024``) or in a short word (``T321A``).  A name with a part that is
none of these (mixed case at random, digits inside letters) or longer than any
word is taken for a secret and not shown; the key that holds it is named instead.
"""

from __future__ import annotations

import re

#: One ``_``-separated part of a name a person wrote; a short one in one case
#: may hold digits anywhere (``T321A``, ``X509``).
_WORD = re.compile(r"(?:[A-Z]+|[a-z]+|[A-Z]?[a-z]+(?:[A-Z][a-z]+)+)?[0-9]{0,4}"
                   r"|[A-Z0-9]{1,8}|[a-z0-9]{1,8}")
#: Longer than a word: ``THREETWOONE`` is 11, a 20-character part is random.
_LONGEST_WORD = 20


def looks_like_secret(name: str) -> bool:
    """Whether ``name`` (a valid variable name) may be a secret pasted in its place."""
    return not all(len(part) <= _LONGEST_WORD and _WORD.fullmatch(part)
                   for part in name.split("_"))


def env_variable(name: str, key: str) -> str:
    """``environment variable DAV_TOKEN (auth.token_env)``, or, when the name
    may be a secret, words that name ``key`` instead."""
    if looks_like_secret(name):
        return (f"the environment variable {key} names (its name is not shown: it looks "
                "like a token or password pasted in place of a variable's name)")
    return f"environment variable {name} ({key})"
