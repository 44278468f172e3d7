"""``mrtdose user ...`` and ``mrtdose audit``: accounts and the audit trail, headless.

Passwords are never taken from the command line (it is visible to other users
of the machine and kept in shell history):

* the acting user's password (``--as USER``) comes from ``$MRTDOSE_PASSWORD``;
* a new password (``user add``, ``user bootstrap``, ``user passwd``) comes from
  ``$MRTDOSE_NEW_PASSWORD``;
* when a variable is not set and stdin is a terminal, the password is asked
  for (without echo; a new one twice).

Commands::

    mrtdose user bootstrap USERNAME [--full-name TEXT]        first admin (empty store only)
    mrtdose user add USERNAME --role ROLE [--full-name TEXT] --as ADMIN
    mrtdose user list
    mrtdose user unlock USERNAME --as ADMIN
    mrtdose user disable USERNAME --as ADMIN
    mrtdose user enable USERNAME --as ADMIN
    mrtdose user passwd USERNAME --as USER                   own password, or any as admin
    mrtdose user ca-cert [--out FILE]                         the department CA certificate (PEM)
    mrtdose audit [CASE]                                     entries (of one case)
    mrtdose audit --verify                                   exit 0 intact, 1 with the problems
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.store.permissions import ROLES
from dosimetry_core.store.repository import CaseRepository

PASSWORD_ENV = "MRTDOSE_PASSWORD"
NEW_PASSWORD_ENV = "MRTDOSE_NEW_PASSWORD"


def _io() -> tuple[Any, Any]:
    from dosimetry_core.cli.main import _emit, _open_store

    return _emit, _open_store


def _password(username: str) -> str:
    value = os.environ.get(PASSWORD_ENV)
    if value:
        return value
    if sys.stdin.isatty():
        return getpass.getpass(f"password of {username}: ")
    raise InvalidInputError(
        f"no password for {username}: set {PASSWORD_ENV} or run in a terminal to be asked"
    )


def _new_password(username: str) -> str:
    value = os.environ.get(NEW_PASSWORD_ENV)
    if value:
        return value
    if sys.stdin.isatty():
        first = getpass.getpass(f"new password of {username}: ")
        if getpass.getpass("repeat it: ") != first:
            raise InvalidInputError(f"the two passwords typed for {username} differ")
        return first
    raise InvalidInputError(
        f"no new password for {username}: set {NEW_PASSWORD_ENV} or run in a terminal to be asked"
    )


def _login(store: CaseRepository, username: str) -> Any:
    """The actor ``username``: the one the command's access check logged in, else a log-in."""
    if store.actor is not None and store.actor.username == username:
        return store.actor  # checked once already (cli/access.py): no second password prompt
    from dosimetry_core.store.users import authenticate

    return authenticate(store, username, _password(username))


# --------------------------------------------------------------------- user
def cmd_user_bootstrap(args: argparse.Namespace) -> int:
    from dosimetry_core.store.users import bootstrap_admin

    emit, open_store = _io()
    store = open_store(args)
    actor = bootstrap_admin(
        store, args.username, _new_password(args.username), full_name=args.full_name
    )
    emit(
        args,
        {"username": actor.username, "role": actor.role, "full_name": args.full_name},
        f"created the first admin {actor.username}",
    )
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    from dosimetry_core.store.users import create_user

    emit, open_store = _io()
    store = open_store(args)
    actor = _login(store, args.as_user)
    info = create_user(
        store, actor, args.username, _new_password(args.username), args.role, args.full_name
    )
    emit(args, info.to_dict(), f"created user {info.username} ({info.role}) by {actor.username}")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    from datetime import datetime

    from dosimetry_core.store.users import list_users

    emit, open_store = _io()
    users = list_users(open_store(args))
    now = datetime.now()
    lines = [f"{'USER':<20} {'ROLE':<13} {'STATE':<28} FULL NAME"] if users else ["no users"]
    for u in users:
        if not u.active:
            state = "disabled"
        elif u.locked(now):
            assert u.locked_until is not None
            state = f"locked until {u.locked_until.isoformat(sep=' ', timespec='minutes')}"
        else:
            state = "active" + (f" ({u.failed_attempts} failed)" if u.failed_attempts else "")
        if u.integrity not in ("ok", "no keys"):
            state = "ALTERED (see below)"
        lines.append(f"{u.username:<20} {u.role:<13} {state:<28} {u.full_name}")
    bad = [u.integrity for u in users if u.integrity not in ("ok", "no keys")]
    lines += [f"PROBLEM: {p}" for p in bad]
    emit(args, {"users": [u.to_dict() for u in users]}, "\n".join(lines))
    if bad:
        sys.stderr.write(f"mrtdose: account rows fail their signature check ({bad[0]})\n")
        return 1
    return 0


def _admin_change(args: argparse.Namespace, verb: str) -> int:
    from dosimetry_core.store import users as accounts

    emit, open_store = _io()
    store = open_store(args)
    actor = _login(store, args.as_user)
    change = {
        "unlock": accounts.unlock_user,
        "disable": accounts.disable_user,
        "enable": accounts.enable_user,
    }[verb]
    info = change(store, actor, args.username)
    emit(
        args,
        info.to_dict(),
        f"{verb}d user {info.username}" if verb != "unlock" else f"unlocked user {info.username}",
    )
    return 0


def cmd_user_passwd(args: argparse.Namespace) -> int:
    from dosimetry_core.store.users import set_password

    emit, open_store = _io()
    store = open_store(args)
    actor = _login(store, args.as_user)
    set_password(store, actor, args.username, _new_password(args.username))
    emit(args, {"username": args.username}, f"changed the password of {args.username}")
    return 0


def cmd_user_ca_cert(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dosimetry_core.store.keys import fingerprint, load_cert
    from dosimetry_core.store.users import ca_certificate_pem

    emit, open_store = _io()
    pem = ca_certificate_pem(open_store(args))
    data: dict[str, Any] = {
        "certificate_sha256": fingerprint(load_cert(pem)),
        "pem": pem,
        "file": None,
    }
    if args.out:
        out = Path(args.out)
        if not out.parent.is_dir():
            raise InvalidInputError(f"the folder of --out {out} does not exist", field="out")
        out.write_text(pem, encoding="ascii")
        data["file"] = str(out)
        text = (
            f"wrote the department CA certificate to {out} (SHA-256 {data['certificate_sha256']})"
        )
    else:
        text = pem.rstrip("\n")
    emit(args, data, text)
    return 0


# -------------------------------------------------------------------- audit
def cmd_audit(args: argparse.Namespace) -> int:
    from dosimetry_core.store import audit

    emit, open_store = _io()
    store = open_store(args)
    if args.verify:
        from dosimetry_core.store.case_store import case_store_of
        from dosimetry_core.store.qa_rows import audit_anchor_problems
        from dosimetry_core.store.users import verify_accounts

        problems = (
            audit.verify(store)
            + verify_accounts(store)
            + audit_anchor_problems(store)
            + case_store_of(store).verify_documents(include_unrecorded=False)
        )
        n = len(audit.entries(store))
        data = {"intact": not problems, "n_entries": n, "problems": problems}
        if problems:
            text = "\n".join([f"audit trail DAMAGED ({len(problems)} problem(s)):", *problems])
        else:
            text = f"audit trail intact: {n} entries, chain verified"
        emit(args, data, text)
        if problems:
            sys.stderr.write(f"mrtdose: the audit trail fails verification ({problems[0]})\n")
            return 1
        return 0
    if args.case is not None:
        store.load_case(args.case)  # an unknown case is an error, not an empty trail
    rows = audit.entries(store, args.case)
    lines = [
        f"{e.seq:>5}  {e.at.isoformat(sep=' ', timespec='seconds')}  "
        f"{(e.username or '(system)'):<14} {e.role:<12} {e.action:<16} "
        f"{e.case_id or '-':<18} " + ", ".join(f"{k}={v}" for k, v in sorted(e.details.items()))
        for e in rows
    ]
    if not rows:
        lines = [f"no audit entries{' for case ' + args.case if args.case else ''}"]
    emit(args, {"case_id": args.case, "entries": [e.to_dict() for e in rows]}, "\n".join(lines))
    return 0


# ------------------------------------------------------------------- parser
def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``user`` and ``audit`` on the ``mrtdose`` subparsers."""
    p = sub.add_parser(
        "user",
        parents=[common],
        help="user accounts (passwords from $MRTDOSE_PASSWORD / $MRTDOSE_NEW_PASSWORD)",
    )
    usub = p.add_subparsers(dest="user_command", metavar="USER_COMMAND", required=True)

    q = usub.add_parser("bootstrap", parents=[common], help="create the first admin")
    q.add_argument("username", metavar="USERNAME")
    q.add_argument("--full-name", default="")
    q.set_defaults(func=cmd_user_bootstrap)

    q = usub.add_parser("add", parents=[common], help="create a user (admin)")
    q.add_argument("username", metavar="USERNAME")
    q.add_argument("--role", required=True, choices=ROLES)
    q.add_argument("--full-name", default="")
    q.add_argument("--as", dest="as_user", required=True, metavar="ADMIN")
    q.set_defaults(func=cmd_user_add)

    q = usub.add_parser("list", parents=[common], help="list users")
    q.set_defaults(func=cmd_user_list)

    for verb, text in (
        ("unlock", "lift a lock after failed log-ins (admin)"),
        ("disable", "disable an account (admin)"),
        ("enable", "enable a disabled account (admin)"),
    ):
        q = usub.add_parser(verb, parents=[common], help=text)
        q.add_argument("username", metavar="USERNAME")
        q.add_argument("--as", dest="as_user", required=True, metavar="ADMIN")
        q.set_defaults(func=lambda a, v=verb: _admin_change(a, v))

    q = usub.add_parser(
        "ca-cert", parents=[common], help="export the department CA certificate (PEM)"
    )
    q.add_argument("--out", default=None, metavar="FILE")
    q.set_defaults(func=cmd_user_ca_cert)

    q = usub.add_parser("passwd", parents=[common], help="change a password")
    q.add_argument("username", metavar="USERNAME")
    q.add_argument("--as", dest="as_user", required=True, metavar="USER")
    q.set_defaults(func=cmd_user_passwd)

    p = sub.add_parser(
        "audit", parents=[common], help="print the audit trail of a case, or verify it"
    )
    p.add_argument("case", metavar="CASE", nargs="?", default=None)
    p.add_argument("--verify", action="store_true", help="check the hash chain (exit 1 if damaged)")
    p.set_defaults(func=cmd_audit)
