"""Access control of the command line: one rule per command, checked before it runs.

Every ``mrtdose`` command is listed in :data:`RULES` under its command path
(``"cases"``, ``"qa calibrate"``, ``"contour approve"``): the permission
action it needs (:data:`dosimetry_core.store.permissions.ACTIONS`), or that it
opens no store at all (the calculators).  :func:`dosimetry_core.cli.main.main`
calls :func:`check_access` after parsing and before the command's function, so
a refused command has read no case, computed nothing and written nothing:

* a store **without accounts** is a single-user store: every command works
  without a log-in, as before accounts existed;
* a store **with accounts** needs a log-in (``$MRTDOSE_USER`` and
  ``$MRTDOSE_PASSWORD``; the user commands also take ``--as USER`` as the
  log-in name) and a role that may do the command's action;
* the actor is always the logged-in user: a ``--user`` or ``--as`` option naming
  anybody else is refused (field ``user``), whatever the command does with it.

A command path missing from the table fails closed: on a store with accounts
it is refused (:func:`open_store_for`), and a test walks the parser so that a
new command cannot be added without its rule.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dosimetry_core.errors import InvalidInputError, PermissionDeniedError
from dosimetry_core.store.permissions import ACTIONS, Actor, require
from dosimetry_core.store.repository import CaseRepository

USER_ENV = "MRTDOSE_USER"
PASSWORD_ENV = "MRTDOSE_PASSWORD"
LOGIN_HINT = "log in with MRTDOSE_USER and MRTDOSE_PASSWORD"

_STORE_ATTR = "_mrtdose_checked_store"
_PATH_ATTR = "_mrtdose_command_path"


@dataclass(frozen=True)
class Rule:
    """What one command needs.

    Attributes
    ----------
    action
        The permission action (a key of ``ACTIONS``), a function of the parsed
        arguments giving it (``sign --role-as``), or ``None``: any logged-in user.
    opens_store
        Whether the command opens the case store (a function of the arguments
        when it depends on an option, e.g. ``verify-report FILE [--store]``).
    login
        ``False`` only for ``user bootstrap`` (the first admin of an empty store).
    announce
        Print the store's mode on stderr (``store PATH: single-user ...``); every
        command does when stderr is a terminal.
    """

    action: str | Callable[[argparse.Namespace], str] | None
    opens_store: bool | Callable[[argparse.Namespace], bool] = True
    login: bool = True
    announce: bool = False

    def action_for(self, args: argparse.Namespace) -> str | None:
        return self.action(args) if callable(self.action) else self.action

    def store_for(self, args: argparse.Namespace) -> bool:
        return bool(self.opens_store(args) if callable(self.opens_store) else self.opens_store)


NO_STORE = Rule(None, opens_store=False)
"""A pure calculator: no store, no log-in."""


def _sign_action(args: argparse.Namespace) -> str:
    return "sign-mpe" if getattr(args, "role_as", None) == "mpe" else "sign-practitioner"


def _audit_action(args: argparse.Namespace) -> str:
    """``audit --verify`` checks the chain (``verify``); listing entries reads them."""
    return "verify" if getattr(args, "verify", False) else "read-audit"


def _verify_opens_store(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "store", None))


def _protocols_opens_store(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "id", None) and getattr(args, "case", None))


RULES: dict[str, Rule] = {
    # reading (every clinical role)
    "cases": Rule("read", announce=True),
    "worklist": Rule("read", announce=True),
    "show": Rule("read"),
    "voi": Rule("read"),
    "dvh": Rule("read"),
    "population": Rule("read"),
    "administration list": Rule("read"),
    "measurement list": Rule("read"),
    "qa list": Rule("read"),
    "protocols": Rule("read", opens_store=_protocols_opens_store),
    "audit": Rule(_audit_action),
    # data entry and import (technologist, physicist)
    "import": Rule("import"),
    "demo": Rule("import"),
    "case-new": Rule("import"),
    "timepoint remove": Rule("import"),
    "administration add": Rule("enter-administration"),
    "administration edit": Rule("enter-administration"),
    "measurement add": Rule("enter-measurement"),
    "measurement delete": Rule("enter-measurement"),
    "scan-time": Rule("enter-measurement"),
    # computation (physicist)
    "register": Rule("register"),
    "registration": Rule("register"),
    "kinetics": Rule("compute"),
    "tia-map": Rule("compute"),
    "dose": Rule("compute"),
    "run": Rule("compute"),
    "batch": Rule("compute"),
    "contour threshold": Rule("contour"),
    "contour grow": Rule("contour"),
    "contour margin": Rule("contour"),
    "contour boolean": Rule("contour"),
    "contour fill-holes": Rule("contour"),
    "contour largest": Rule("contour"),
    "contour interpolate": Rule("contour"),
    "contour propagate": Rule("contour"),
    "contour submit": Rule("contour"),
    "contour rename": Rule("contour"),
    "contour kind": Rule("contour"),
    "contour colour": Rule("contour"),
    "contour delete": Rule("contour"),
    "contour import-rtstruct": Rule("contour"),
    "contour import-seg": Rule("contour"),
    "contour import-nifti": Rule("contour"),
    "contour approve": Rule("approve-contour"),
    "contour reject": Rule("approve-contour"),
    # identifiable data leaving the workstation (physicist, physician)
    "export": Rule("export"),
    "listen": Rule("import"),
    "pacs find": Rule("read"),
    "pacs get": Rule("import"),
    "pacs send": Rule("export"),
    "contour export-rtstruct": Rule("export"),
    "contour export-seg": Rule("export"),
    "contour export-nifti": Rule("export"),
    # QA: a calibration scales every later import (physicist)
    "qa calibrate": Rule("qa"),
    "qa recovery": Rule("qa"),
    # reports
    "report": Rule("report"),
    "sign": Rule(_sign_action),
    "amend": Rule("amend-report"),
    "verify-report": Rule("verify", opens_store=_verify_opens_store),
    # accounts
    "user bootstrap": Rule(None, login=False),
    "user add": Rule("manage-users"),
    "user list": Rule("manage-users", announce=True),
    "user unlock": Rule("manage-users"),
    "user disable": Rule("manage-users"),
    "user enable": Rule("manage-users"),
    "user passwd": Rule(None),  # own password (any user), another's as admin (users.py)
    "user ca-cert": Rule("verify"),
    # pure calculators: no store
    "fit": NO_STORE,
    "bed": NO_STORE,
    "thyroid": NO_STORE,
    "mibg": NO_STORE,
    "marrow": NO_STORE,
    "sirt": NO_STORE,
    "kernel": NO_STORE,
    "demo-data": NO_STORE,
}
"""Command path -> :class:`Rule` (module docstring)."""

for _path, _rule in RULES.items():  # a typo in an action is a programming error
    if isinstance(_rule.action, str) and _rule.action not in ACTIONS:
        raise ValueError(f"access rule of {_path!r}: unknown action {_rule.action!r}")


# ------------------------------------------------------------- command paths
def command_paths(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every leaf command of ``parser``: path (``"qa calibrate"``) -> its parser."""
    out: dict[str, argparse.ArgumentParser] = {}

    def walk(p: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            out[" ".join(path)] = p
            return
        for name, q in subs[0].choices.items():
            walk(q, (*path, name))

    for name, q in _subparsers(parser).items():
        walk(q, (name,))
    return out


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subs[0].choices) if subs else {}


def command_path(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The command path the parsed ``args`` belong to (``"contour approve"``)."""
    path: list[str] = []
    p = parser
    while True:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            break
        name = getattr(args, subs[0].dest, None) if subs[0].dest != argparse.SUPPRESS else None
        if name is None or name not in subs[0].choices:
            break
        path.append(name)
        p = subs[0].choices[name]
    return " ".join(path)


# --------------------------------------------------------------------- log-in
def _password(username: str) -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password is None and sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"password of {username}: ")
    if password is None:
        raise InvalidInputError(
            f"{USER_ENV}={username} needs {PASSWORD_ENV} (or a terminal to ask)",
            field="password",
        )
    return password


def _login_name(args: argparse.Namespace, store: CaseRepository) -> str | None:
    """``$MRTDOSE_USER``; else, on a store with accounts, the ``--as`` of the user commands.

    (On a single-user store ``--as`` of ``report``/``sign`` is only a name.)
    """
    env = os.environ.get(USER_ENV) or None
    as_user = getattr(args, "as_user", None) or None
    if env and as_user and as_user != env:
        raise InvalidInputError(
            f"--as names somebody else than the logged-in user ({as_user!r}, logged in: "
            f"{env!r}); the actor is always the logged-in user",
            field="user",
        )
    if env:
        return env
    return as_user if as_user and store.has_users() else None


def store_path(args: argparse.Namespace) -> Path:
    """The store folder of a command: ``--store``, ``$MRTDOSE_STORE`` or the default."""
    from dosimetry_core.store import default_store_path

    return Path(
        getattr(args, "store", None) or os.environ.get("MRTDOSE_STORE") or default_store_path()
    )


def _check_named_users(args: argparse.Namespace, actor: Actor | None) -> None:
    """``--user`` / ``--as`` may only name the logged-in user (store with accounts)."""
    if actor is None:
        return
    for dest, option in (("user", "--user"), ("as_user", "--as")):
        named = getattr(args, dest, None)
        if named and named != actor.username:
            raise InvalidInputError(
                f"{option} names somebody else than the logged-in user ({named!r}, logged in: "
                f"{actor.username!r}); the actor is always the logged-in user",
                field="user",
            )


def mode_line(store: CaseRepository, path: Path) -> str:
    """``store PATH: single-user (no accounts)`` or ``..., N accounts, logged in as U (role)``."""
    if not store.has_users():
        return f"store {path}: single-user (no accounts)"
    from dosimetry_core.store.users import list_users

    n = len(list_users(store))
    who = (
        f"logged in as {store.actor.username} ({store.actor.role})"
        if store.actor is not None
        else "nobody logged in"
    )
    return f"store {path}: {n} account{'s' if n != 1 else ''}, {who}"


def open_store_for(args: argparse.Namespace, rule: Rule | None, command: str) -> Any:
    """Open the store, log in and check ``rule`` (module docstring); return the store.

    Raises
    ------
    PermissionDeniedError
        The store has accounts and nobody logged in, or the role may not do the
        command's action, or the command has no rule.
    AuthenticationError
        A wrong user name or password, a locked or disabled account (audited by
        :func:`dosimetry_core.store.users.authenticate`).
    InvalidInputError
        ``--user`` / ``--as`` names somebody else than the logged-in user (field
        ``user``), or a password is missing.
    """
    from dosimetry_core.store import CaseStore
    from dosimetry_core.store.case_store import database_url_from_env

    path = store_path(args)
    store = CaseStore(path, url=database_url_from_env())
    try:
        username = _login_name(args, store) if (rule is None or rule.login) else None
        if username:
            from dosimetry_core.store.users import authenticate

            store.actor = authenticate(store, username, _password(username))
        if store.has_users():
            if rule is None:
                raise PermissionDeniedError(
                    f"mrtdose {command} has no access rule (dosimetry_core/cli/access.py); "
                    "refused on a store with user accounts"
                )
            if rule.login:
                if store.actor is None:
                    raise PermissionDeniedError(
                        f"this store has user accounts: {LOGIN_HINT} (store {path}; "
                        f"mrtdose {command} needs a log-in)"
                    )
                action = rule.action_for(args)
                if action is not None:
                    require(store.actor, action)
                _check_named_users(args, store.actor)
    except BaseException:
        store.close()
        raise
    if rule is not None and (rule.announce or sys.stderr.isatty()):
        sys.stderr.write(mode_line(store, path) + "\n")
    return store


def check_access(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Any:
    """Before a command runs: open its store and check its rule; ``None`` without a store.

    The checked store is kept on ``args`` for :func:`checked_store`, so the
    command uses the same logged-in store and nothing is opened twice.
    """
    command = command_path(parser, args)
    setattr(args, _PATH_ATTR, command)
    rule = RULES.get(command)
    if rule is not None and not rule.store_for(args):
        return None
    store = open_store_for(args, rule, command)
    setattr(args, _STORE_ATTR, store)
    return store


def checked_store(args: argparse.Namespace) -> Any:
    """The store :func:`check_access` opened for ``args``, or ``None``."""
    return getattr(args, _STORE_ATTR, None)


def open_unchecked(args: argparse.Namespace) -> Any:
    """Open and check the store of a command that did not pass :func:`check_access`."""
    command = str(getattr(args, _PATH_ATTR, "") or "")
    rule = RULES.get(command)
    if rule is not None and not rule.store_for(args):
        rule = None  # a command said to open no store opens one: fail closed
    store = open_store_for(args, rule, command or "(unknown command)")
    setattr(args, _STORE_ATTR, store)
    return store


def acting_user_name(store: CaseRepository, user: str | None, default: str = "") -> str:
    """Who a command records as its author (``created_by``, QA ``created_by``).

    With accounts: the logged-in user (a ``user`` naming anybody else is
    refused, field ``user``).  On a single-user store: ``user`` or ``default``.
    """
    actor = store.actor
    if actor is None:
        if store.has_users():
            raise PermissionDeniedError(f"this store has user accounts: {LOGIN_HINT}")
        return user or default
    _check_named_users(argparse.Namespace(user=user), actor)
    return str(actor.username)
