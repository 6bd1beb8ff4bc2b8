"""``dxassist audit verify`` and ``dxassist audit list``, and the recording of the account
commands (``user``, ``token``) that the command line runs as "system"."""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dxassist.errors import InputError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: exit code of `audit verify` when the chain is broken
EXIT_TAMPERED = 7
#: most entries `audit list` shows (dxassist.audit.trail.MAX_LIST)
MAX_LIST = 1000


def command_client() -> str:
    """Who ran the command, where: ``osuser@host``."""
    try:
        who = getpass.getuser()
    except Exception:  # no name for this uid (a container): still say where
        who = "?"
    return f"{who}@{socket.gethostname()}"


def record_command(
    session: Session,
    action: str,
    detail: Mapping[str, Any] | None = None,
    study_id: str | None = None,
) -> None:
    """Append an entry for a command-line action (actor "system", role "cli"); raises
    :class:`~dxassist.audit.trail.AuditUnavailableError` (exit 6) if it cannot."""
    from dxassist.audit import trail as audit

    audit.record(
        session,
        action,
        actor="system",
        actor_role="cli",
        study_id=study_id,
        detail=detail,
        client=command_client(),
    )


def _sessions() -> Any:
    from dxassist.cli import _migrated_sessions, _service_settings

    return _migrated_sessions(_service_settings())


def _expect(value: str | None) -> tuple[int, str] | None:
    if value is None:
        return None
    ident, _, digest = value.partition(":")
    digest = digest.strip().lower()
    if (
        not ident.strip().isdigit()
        or len(digest) != 64
        or not all(c in "0123456789abcdef" for c in digest)
    ):
        raise InputError(
            f"--expect {value!r}: give ID:HASH as `dxassist audit verify --print-head` prints it"
        )
    return int(ident), digest


def cmd_verify(args: argparse.Namespace) -> int:
    from dxassist.audit import trail as audit

    expect = _expect(args.expect)
    with _sessions()() as session:
        result = audit.verify(session, expect=expect)
    if not result.intact:
        print(f"dxassist: audit trail NOT intact: {result.problem}", file=sys.stderr)
        print(
            f"{result.count} entries verified before the problem (last good: entry "
            f"{result.head_id})",
            file=sys.stderr,
        )
        return EXIT_TAMPERED
    print(f"{result.count} entries, chain intact")
    if args.print_head:
        print(f"head {result.head_id}:{result.head_hash}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from dxassist.audit import trail as audit

    query = audit.AuditQuery(
        user=args.user,
        study=args.study,
        action=audit.parse_action(args.action),
        since=audit.parse_when(args.since, "--since"),
        until=audit.parse_when(args.until, "--until", end=True),
        limit=args.limit,
    )
    with _sessions()() as session:
        found = [audit.as_dict(e) for e in audit.events(session, query)]
        record_command(session, audit.Action.AUDIT_VIEW, {"shown": len(found), "via": "cli"})
    if args.json:
        print(json.dumps({"items": found}, ensure_ascii=False))
        return 0
    if not found:
        print("no audit entries match")
    for e in found:
        detail = "" if e["detail"] is None else json.dumps(e["detail"], ensure_ascii=False)
        print(
            f"{e['id']:>7}  {e['at'][:19].replace('T', ' ')}  {e['actor']:<16} "
            f"{e['actor_role'] or '-':<11} {e['action']:<16} {e['study_id'] or '-':<36}  "
            f"{e['client'] or '-'}  {detail}"
        )
    return 0


def register(sub: Any) -> None:
    """Add ``dxassist audit`` to the subparsers `sub` of :func:`dxassist.cli.build_parser`."""
    parser = sub.add_parser("audit", help="the audit trail: verify the chain, list entries")
    cmds = parser.add_subparsers(dest="audit_command", required=True)
    verify = cmds.add_parser(
        "verify",
        help="check the hash chain (exit 0 if intact, 7 naming the first bad entry)",
    )
    verify.add_argument(
        "--print-head",
        action="store_true",
        help="also print the newest entry as ID:HASH, to write down or export (daily): a "
        "later --expect with it detects a rewritten trail or deleted newest entries",
    )
    verify.add_argument(
        "--expect", metavar="ID:HASH", help="a head printed earlier that must still be there"
    )
    verify.set_defaults(func=cmd_verify)
    lst = cmds.add_parser("list", help="list entries, newest first")
    lst.add_argument("--user", help="actor (username, 'system', or a calling AE title)")
    lst.add_argument("--study", help="study id")
    lst.add_argument("--action", help="e.g. study_view, login_failed, review")
    lst.add_argument("--since", help="YYYY-MM-DD or ISO date-time")
    lst.add_argument("--until", help="YYYY-MM-DD (inclusive) or ISO date-time")
    lst.add_argument("--limit", type=int, default=100, help=f"at most 1 to {MAX_LIST}")
    lst.add_argument("--json", action="store_true", help="one JSON object")
    lst.set_defaults(func=cmd_list)
