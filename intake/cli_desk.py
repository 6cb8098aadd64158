"""The secretariat's commands: `intake log|show|admit|reject|release|withdraw|resend|reprocess|
export|documents|user|web`. `register(subparsers)` adds them to the `intake` parser.

Each action runs one transaction (`intake.desk`), is recorded in the audit
trail under `--as NAME` (default: the operating-system user), and then sends
the replies it queued at once (`--no-send` leaves them to the next poll).
A refused action prints one line and exits 1; machine-readable output
(`--format json|csv`) goes to stdout only.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from intake import db
from intake.config import Settings
from intake.desk import Refused

log = logging.getLogger("intake")

EXIT_OK, EXIT_REFUSED = 0, 1


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return f"uid{os.getuid()}"


@contextmanager
def _sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    from intake.cli import _require_schema

    _require_schema(settings)
    engine = db.make_engine(settings.database_url)
    try:
        yield db.make_sessionmaker(engine)
    finally:
        engine.dispose()


def _refused(exc: Refused) -> int:
    print(f"intake: {exc}", file=sys.stderr)
    return EXIT_REFUSED


def deliver_now(settings: Settings, sessions: sessionmaker[Session]) -> str:
    """Send what the outbox holds now; a failure leaves it for the next poll."""
    from intake.outbox import deliver_pending

    try:
        report = deliver_pending(sessions, settings, worker=f"desk:{socket.gethostname()}:{os.getpid()}")
    except Exception as exc:  # the action is committed; sending is retried by every poll
        log.warning("the reply stays in the outbox for the next poll: %s", exc)
        return "the reply waits in the outbox for the next poll"
    if report.sent:
        return f"{report.sent} reply(ies) sent"
    if report.retried or report.failed:
        return "the SMTP server did not take the reply yet: it waits in the outbox"
    return "nothing to send"


def _parse_time(text: str, settings: Settings, end_of_day: bool) -> datetime:
    """A date (local midnight; the next one for --until) or a date-time, local unless it has an offset."""
    zone = settings.event.timezone
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").date()
            moment = datetime.combine(day, time(0), tzinfo=zone)
            return moment + timedelta(days=1) if end_of_day else moment
        value = datetime.fromisoformat(text)
    except ValueError:
        raise Refused(f"not a date or date-time: {text!r} (use 2026-04-30 or 2026-04-30T18:00)") from None
    return value if value.tzinfo else value.replace(tzinfo=zone)


# --- reading ----------------------------------------------------------------------------------


def cmd_log(settings: Settings, args: argparse.Namespace) -> int:
    from intake.listing import LogFilter, iter_message_entries, write_csv, write_json, write_table

    try:
        where = LogFilter(
            event=None if args.all_events else settings.event.id,
            status=args.status,
            since=_parse_time(args.since, settings, False) if args.since else None,
            until=_parse_time(args.until, settings, True) if args.until else None,
            sender=args.sender,
            search=args.search,
            sort=args.sort,
            descending=args.desc,
            limit=args.limit,
        )
    except Refused as exc:
        return _refused(exc)
    with _sessions(settings) as sessions, sessions() as session:
        entries = iter_message_entries(session, where)  # streamed: read while written
        if args.format == "json":
            write_json(entries, sys.stdout)
        elif args.format == "csv":
            write_csv(entries, sys.stdout, settings.event.timezone)
        else:
            write_table(entries, sys.stdout, settings.event.timezone)
    return EXIT_OK


def cmd_show(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk.show import details, find_message, original_text, write_text
    from intake.store import BlobStore

    with _sessions(settings) as sessions, sessions() as session:
        try:
            found = details(session, settings.event, args.ref)
            original = (
                original_text(BlobStore(settings.data_dir), find_message(session, settings.event, args.ref))
                if args.original
                else None
            )
        except Refused as exc:
            return _refused(exc)
    if args.format == "json":
        if original is not None:
            found["original_text"] = original
        json.dump(found, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        write_text(found, sys.stdout)
        if original is not None:
            sys.stdout.write("\nOriginal message (plain text):\n" + original)
    return EXIT_OK


# --- acting -----------------------------------------------------------------------------------


def _act(settings: Settings, args: argparse.Namespace, action: Any) -> int:
    with _sessions(settings) as sessions:
        try:
            done = action(sessions)
        except Refused as exc:
            return _refused(exc)
        print(done.summary)
        if done.reply_ids and not args.no_send:
            print(deliver_now(settings, sessions))
    return EXIT_OK


def cmd_admit(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk.actions import admit

    return _act(
        settings,
        args,
        lambda s: admit(
            s,
            settings,
            args.id,
            args.actor,
            reason=args.reason,
            revision_of=args.revision_of,
            as_new=args.new,
        ),
    )


def cmd_reject(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk.actions import reject

    return _act(
        settings,
        args,
        lambda s: reject(s, settings, args.id, args.actor, args.reason, notify=not args.no_reply),
    )


def cmd_release(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk.actions import release

    return _act(
        settings,
        args,
        lambda s: release(
            s,
            settings,
            args.id,
            args.actor,
            reason=args.reason,
            revision_of=args.revision_of,
            as_new=args.new,
        ),
    )


def cmd_withdraw(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk.actions import withdraw

    args.no_send = True
    return _act(settings, args, lambda s: withdraw(s, settings, args.number, args.actor, args.reason))


def cmd_resend(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk.actions import resend

    return _act(settings, args, lambda s: resend(s, settings, args.reply_id, args.actor, reason=args.reason))


def cmd_reprocess(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk import reprocess

    if bool(args.ids) == bool(args.all):
        return _refused(Refused("name the messages to judge again (IDs), or --all"))
    ids = None if args.all else args.ids
    with _sessions(settings) as sessions:
        try:
            if args.apply:
                report = reprocess.apply(sessions, settings, args.actor, ids)
            else:
                report = reprocess.plan(sessions, settings, ids)
        except Refused as exc:
            return _refused(exc)
        sent = deliver_now(settings, sessions) if report.queued and not args.no_send else None
    if args.format == "json":
        json.dump(_report_json(report, sent), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    out = sys.stdout
    for change in report.changes:
        flag = "left for a person" if change.left_alone else ("changes" if report.applied else "would change")
        out.write(
            f"#{change.message_id} {change.before} -> {change.after}  [{flag}]  {change.subject or ''}\n"
        )
        for line in change.lines:
            out.write(f"    {line}\n")
        if change.left_alone:
            out.write(f"    not changed: {change.left_alone}\n")
        elif change.news:
            out.write("    the contributor is told (unless told this already)\n")
    for line in report.replies:
        out.write(f"reply {line}\n")
    out.write(
        f"\n{len(report.changed)} changed, {len(report.left_alone)} left for a person, "
        f"{report.unchanged} unchanged, {report.skipped} not judged (duplicates, too large, not e-mail).\n"
    )
    if not report.applied and report.changed:
        out.write("Dry run: nothing was changed or sent. Run again with --apply to apply.\n")
    if sent:
        out.write(sent + "\n")
    return EXIT_OK


def _report_json(report: Any, sent: str | None) -> dict[str, Any]:
    return {
        "applied": report.applied,
        "changes": [
            {
                "message": c.message_id,
                "subject": c.subject,
                "before": c.before,
                "after": c.after,
                "lines": list(c.lines),
                "left_alone": c.left_alone,
                "news": c.news,
            }
            for c in report.changes
        ],
        "unchanged": report.unchanged,
        "skipped": report.skipped,
        "replies": report.replies,
        "sent": sent,
    }


# --- the documents list and files ------------------------------------------------------------


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    import io

    from intake.desk.export import document_rows, write_csv, write_xlsx

    with _sessions(settings) as sessions, sessions() as session:
        rows = document_rows(session, settings.event)
    zone = settings.event.timezone.key
    if args.format == "csv":
        text = io.StringIO()
        write_csv(rows, text, zone)
        data = text.getvalue().encode("utf-8")
    else:
        buffer = io.BytesIO()
        write_xlsx(rows, buffer, zone, f"{settings.event.acronym} documents")
        data = buffer.getvalue()
    if args.out:
        Path(args.out).write_bytes(data)
        print(f"{len(rows)} document(s) written to {args.out}", file=sys.stderr)
    elif args.format == "xlsx" and sys.stdout.isatty():
        return _refused(Refused("an .xlsx file is not for a terminal: give --out FILE"))
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return EXIT_OK


def cmd_documents(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk.export import write_documents
    from intake.store import BlobStore

    if bool(args.number) == bool(args.all):
        return _refused(Refused("name one document NUMBER, or --all"))
    with _sessions(settings) as sessions, sessions() as session:
        try:
            written = write_documents(
                session, BlobStore(settings.data_dir), settings.event, Path(args.out), args.number
            )
        except Refused as exc:
            return _refused(exc)
        except OSError as exc:
            return _refused(Refused(f"cannot write to {args.out}: {exc.strerror}"))
    for path in written:
        print(path)
    return EXIT_OK


# --- accounts and the dashboard ---------------------------------------------------------------


def cmd_user(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk.accounts import add_user, list_users

    with _sessions(settings) as sessions:
        if args.user_command == "list":
            for user in list_users(sessions):
                state = " (disabled)" if user.disabled else ""
                print(f"{user.name}\t{user.role}{state}")
            return EXIT_OK
        try:
            password = None if args.no_password else _read_password(args.password_stdin)
            print(add_user(sessions, args.name, password, args.role, args.actor, update=args.update))
        except Refused as exc:
            return _refused(exc)
    return EXIT_OK


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise Refused("no terminal to ask for the password: give it on stdin with --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise Refused("the two passwords differ")
    return first


def cmd_web(settings: Settings, args: argparse.Namespace) -> int:
    from intake.web.serve import WebOptions, serve

    with _sessions(settings):
        pass  # the schema check: refuse to serve an old database
    options = WebOptions(
        host=args.host,
        port=args.port,
        session_hours=args.session_hours,
        idle_minutes=args.idle_minutes,
        proxy_user_header=args.trust_proxy_header,
        trusted_proxies=tuple(args.trusted_proxy or ("127.0.0.1", "::1")),
        secure_cookies=args.secure_cookies,
        threads=args.threads,
    )
    try:
        return serve(settings, options)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        return _refused(Refused(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"))


# --- the parser -------------------------------------------------------------------------------


def register(sub: Any) -> None:
    """Add the desk's commands to the `intake` subparsers."""
    actor = argparse.ArgumentParser(add_help=False)
    actor.add_argument(
        "--as",
        dest="actor",
        metavar="NAME",
        default=_default_actor(),
        help="who is acting, for the audit trail (default: your user name)",
    )
    sending = argparse.ArgumentParser(add_help=False)
    sending.add_argument(
        "--no-send", action="store_true", help="leave the reply in the outbox for the next poll"
    )
    revision = argparse.ArgumentParser(add_help=False)
    revision.add_argument(
        "--revision-of", metavar="NUMBER", help="number the document as the next revision of NUMBER"
    )
    revision.add_argument(
        "--new", action="store_true", help="a new document, whatever it says about revisions"
    )

    p = sub.add_parser("log", help="the intake log, filtered")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--status", help="only messages with this status (accepted, late, held, ...)")
    p.add_argument(
        "--since", metavar="WHEN", help="received at or after (2026-04-30 or 2026-04-30T18:00, local)"
    )
    p.add_argument("--until", metavar="WHEN", help="received before (a date: up to the end of that day)")
    p.add_argument("--sender", help="part of the sender's address or name")
    p.add_argument(
        "--search", help="words in the subject, or a document's title, source, file name or number"
    )
    p.add_argument("--sort", choices=("id", "received", "status", "sender", "subject"), default="id")
    p.add_argument("--desc", action="store_true", help="newest or last first")
    p.add_argument("--limit", type=int)
    p.add_argument(
        "--all-events",
        action="store_true",
        help="every event in the database (default: the event acted on, see --event)",
    )
    p.set_defaults(func=cmd_log)

    p = sub.add_parser("show", help="everything about one message: by ID or by document NUMBER")
    p.add_argument("ref", metavar="ID|NUMBER")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--original", action="store_true", help="also print the original message as plain text")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "admit", parents=[actor, sending, revision], help="accept a late message: number it, acknowledge it"
    )
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--reason", help="why, for the audit trail")
    p.set_defaults(func=cmd_admit)

    p = sub.add_parser(
        "reject", parents=[actor, sending], help="overrule an acceptance or a hold; the sender is told why"
    )
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--reason", required=True, help="why: sent to the contributor and kept in the audit trail")
    p.add_argument("--no-reply", action="store_true", help="do not tell the sender (spam, forged senders)")
    p.set_defaults(func=cmd_reject)

    p = sub.add_parser("release", parents=[actor, sending, revision], help="judge a held message normally")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--reason", help="why, for the audit trail")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser(
        "withdraw", parents=[actor], help="withdraw a numbered document (the number is never reused)"
    )
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("--reason", required=True)
    p.set_defaults(func=cmd_withdraw)

    p = sub.add_parser(
        "resend", parents=[actor, sending], help="queue a reply again (REPLY_ID as `show` lists it)"
    )
    p.add_argument("reply_id", type=int, metavar="REPLY_ID")
    p.add_argument("--reason", help="why, for the audit trail")
    p.set_defaults(func=cmd_resend)

    p = sub.add_parser(
        "reprocess",
        parents=[actor, sending],
        help="judge messages again from their stored bytes (dry run unless --apply)",
    )
    p.add_argument("ids", nargs="*", type=int, metavar="ID")
    p.add_argument("--all", action="store_true", help="every message of the event")
    p.add_argument("--apply", action="store_true", help="apply the changes and answer changed outcomes")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_reprocess)

    p = sub.add_parser(
        "export", help="the documents list: number, title, source, contacts, received, status, files"
    )
    p.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    p.add_argument("--out", metavar="FILE", help="write to FILE (default: stdout)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("documents", help="write documents' files under names built from their numbers")
    p.add_argument("number", nargs="?", metavar="NUMBER")
    p.add_argument("--all", action="store_true", help="every accepted document")
    p.add_argument("--out", metavar="DIR", required=True)
    p.set_defaults(func=cmd_documents)

    p = sub.add_parser("user", help="dashboard accounts")
    users = p.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = users.add_parser("add", parents=[actor], help="add an account (the password is asked for)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", choices=("admin", "viewer"), default="viewer")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin"
    )
    add.add_argument(
        "--no-password", action="store_true", help="sign in only through the trusted proxy header"
    )
    add.add_argument("--update", action="store_true", help="change an existing account's password and role")
    add.set_defaults(func=cmd_user)
    listing = users.add_parser("list", help="the accounts and their roles")
    listing.set_defaults(func=cmd_user)

    p = sub.add_parser("web", help="serve the secretariat's dashboard")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--session-hours", type=float, default=8.0, help="a sign-in lasts at most this long (default 8)"
    )
    p.add_argument(
        "--idle-minutes", type=float, default=60.0, help="and ends after this long unused (default 60)"
    )
    p.add_argument(
        "--trust-proxy-header",
        metavar="HEADER",
        help="sign in the account named in this request header, set by your reverse proxy "
        "(e.g. X-Remote-User); off by default: turn it on only when the dashboard is reachable "
        "through that proxy alone",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="ADDRESS",
        help="the proxy's address: the header is believed from it alone (default 127.0.0.1 and ::1)",
    )
    p.add_argument("--secure-cookies", action="store_true", help="mark cookies Secure (behind HTTPS)")
    p.add_argument("--threads", type=int, default=4)
    p.set_defaults(func=cmd_web)
