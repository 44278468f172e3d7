"""Password policy: long enough (or a passphrase), not a commonly used password.

Rules (checked by :func:`check_password`, in this order):

1. at least :data:`MIN_PASSWORD_LENGTH` (12) characters, or a *passphrase*: at least
   :data:`PASSPHRASE_MIN_WORDS` words of at least :data:`PASSPHRASE_MIN_WORD_LENGTH`
   letters each, separated by spaces, hyphens, dots or underscores (e.g.
   ``"otter-maple-fig"`` is refused, ``"otter maple fig lamp"`` is accepted).  NIST SP
   800-63B (Grassi et al. 2017, section 5.1.1.2) sets 8 characters as the floor for
   user-chosen memorised secrets and recommends allowing long passphrases; this
   workstation signs clinical records with keys unlocked by the password, so it asks
   for 12, as the UK NCSC password guidance does for accounts of high value;
2. not the user name, and not the user name with digits appended;
3. not in the list of common passwords (compared case-insensitively, also with trailing
   digits and punctuation removed, so ``Password123!`` counts as ``password``).  The
   list is the 30 000 most frequent passwords of Mark Burnett's 10-million-password
   corpus (2015) as shipped by the ``zxcvbn`` package (Wheeler 2016, "zxcvbn:
   low-budget password strength estimation", USENIX Security 16), plus the words of
   :data:`LOCAL_COMMON` (names of this product and of the field).  NIST SP 800-63B
   section 5.1.1.2 asks verifiers to refuse "passwords obtained from previous breach
   corpuses" and "dictionary words".

Nothing is downloaded: the list comes with the installed ``zxcvbn`` package.
"""

from __future__ import annotations

import functools
import re

from dosimetry_core.errors import InvalidInputError

MIN_PASSWORD_LENGTH = 12
"""Shortest accepted password that is not a passphrase (module docstring), characters."""

MAX_PASSWORD_LENGTH = 1024
"""Longest accepted password, characters (argon2 hashes any length; this bounds the work)."""

PASSPHRASE_MIN_WORDS = 4
"""Words a passphrase shorter than :data:`MIN_PASSWORD_LENGTH` must have."""

PASSPHRASE_MIN_WORD_LENGTH = 2
"""Letters each word of a passphrase must have."""

LOCAL_COMMON = (
    "dosimetry",
    "dosimetrie",
    "mrtdose",
    "radiotherapy",
    "radiation",
    "nuclear",
    "medicine",
    "physicist",
    "physician",
    "technologist",
    "hospital",
    "lutetium",
    "welcome",
    "changeme",
    "letmein",
    "password",
    "administrator",
)
"""Words refused as passwords although absent from the corpus list (module docstring)."""

_WORD_SPLIT = re.compile(r"[\s\-._]+")
_TRAILING = re.compile(r"[\d\W_]+$")


@functools.cache
def common_passwords() -> frozenset[str]:
    """The lower-case common-password list (module docstring, rule 3)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(w.lower() for w in FREQUENCY_LISTS["passwords"]) | frozenset(LOCAL_COMMON)


def is_passphrase(password: str) -> bool:
    """True when ``password`` has enough words of enough letters (rule 1)."""
    words = [w for w in _WORD_SPLIT.split(password.strip()) if w]
    return len(words) >= PASSPHRASE_MIN_WORDS and all(
        sum(c.isalpha() for c in w) >= PASSPHRASE_MIN_WORD_LENGTH for w in words
    )


def is_common(password: str) -> bool:
    """True when ``password`` (or it without trailing digits/punctuation) is a common one."""
    lowered = password.lower()
    stripped = _TRAILING.sub("", lowered)
    common = common_passwords()
    compact = re.sub(r"[\s\-._]+", "", lowered)
    return lowered in common or stripped in common or compact in common


def check_password(password: str, username: str) -> None:
    """Refuse a password that breaks the policy, with the rule it breaks.

    Raises
    ------
    InvalidInputError
        ``field="password"``; the message names the user and the rule, never the password.
    """
    password = password or ""
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInputError(
            f"the password for {username} is too long: at most {MAX_PASSWORD_LENGTH} characters",
            field="password",
        )
    if len(password) < MIN_PASSWORD_LENGTH and not is_passphrase(password):
        raise InvalidInputError(
            f"the password for {username} is too short: use at least {MIN_PASSWORD_LENGTH} "
            f"characters, or a passphrase of {PASSPHRASE_MIN_WORDS} or more words",
            field="password",
        )
    lowered = password.lower()
    name = (username or "").lower()
    if name and (lowered == name or _TRAILING.sub("", lowered) == name):
        raise InvalidInputError(
            f"the password for {username} must not be the user name", field="password"
        )
    if is_common(password):
        raise InvalidInputError(
            f"the password for {username} is a commonly used password: choose another",
            field="password",
        )
