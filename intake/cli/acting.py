"""The secretariat's actions: `intake admit|reject|release|withdraw|resend|mark-answered|reprocess`.

Each runs one transaction (`intake.desk`), is recorded in the audit trail under
`--as NAME` (default: the operating-system user), and then sends the replies it
queued at once (`--no-send` leaves them to the next poll). A refused action
prints one line and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from intake.cli.context import EXIT_OK, NO_SERVER, actor_option, database, deliver_now, refused
from intake.config import Settings
from intake.desk import Refused


def _act(settings: Settings, args: argparse.Namespace, action: Any) -> int:
    with database(settings) as sessions:
        try:
            done = action(sessions)
        except Refused as exc:
            return refused(exc)
        print(done.summary)
        if done.reply_ids and not args.no_send:
            print(deliver_now(settings, sessions))
    return EXIT_OK


def _decide(settings: Settings, args: argparse.Namespace, decide: Any) -> int:
    """Admit or release: the same arguments, numbered as a revision or as new."""
    return _act(
        settings,
        args,
        lambda s: decide(
            s,
            settings,
            args.id,
            args.actor,
            reason=args.reason,
            revision_of=args.revision_of,
            as_new=args.new,
        ),
    )


def cmd_admit(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk.actions import admit

    return _decide(settings, args, admit)


def cmd_reject(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk.actions import reject

    return _act(
        settings,
        args,
        lambda s: reject(s, settings, args.id, args.actor, args.reason, notify=not args.no_reply),
    )


def cmd_release(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk.actions import release

    return _decide(settings, args, release)


def cmd_withdraw(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk.actions import withdraw

    args.no_send = True
    return _act(settings, args, lambda s: withdraw(s, settings, args.number, args.actor, args.reason))


def cmd_resend(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk.actions import resend

    return _act(settings, args, lambda s: resend(s, settings, args.reply_id, args.actor, reason=args.reason))


def cmd_mark_answered(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk.actions import mark_answered

    args.no_send = True
    return _act(settings, args, lambda s: mark_answered(s, settings, args.id, args.actor, reason=args.reason))


def cmd_reprocess(settings: Settings, args: argparse.Namespace) -> int:
    from intake.desk import reprocess

    if bool(args.ids) == bool(args.all):
        return refused(Refused("name the messages to judge again (IDs), or --all"))
    ids = None if args.all else args.ids
    with database(settings) as sessions:
        try:
            if args.apply:
                report = reprocess.apply(sessions, settings, args.actor, ids)
            else:
                report = reprocess.plan(sessions, settings, ids)
        except Refused as exc:
            return refused(exc)
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


def register(sub: Any) -> None:
    actor = actor_option()
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

    p = sub.add_parser(
        "admit", parents=[actor, sending, revision], help="accept a late message: number it, acknowledge it"
    )
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--reason", help="why, for the audit trail")
    p.set_defaults(func=cmd_admit, needs=NO_SERVER)

    p = sub.add_parser(
        "reject", parents=[actor, sending], help="overrule an acceptance or a hold; the sender is told why"
    )
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--reason", required=True, help="why: sent to the contributor and kept in the audit trail")
    p.add_argument("--no-reply", action="store_true", help="do not tell the sender (spam, forged senders)")
    p.set_defaults(func=cmd_reject, needs=NO_SERVER)

    p = sub.add_parser("release", parents=[actor, sending, revision], help="judge a held message normally")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--reason", help="why, for the audit trail")
    p.set_defaults(func=cmd_release, needs=NO_SERVER)

    p = sub.add_parser(
        "withdraw", parents=[actor], help="withdraw a numbered document (the number is never reused)"
    )
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("--reason", required=True)
    p.set_defaults(func=cmd_withdraw, needs=NO_SERVER)

    p = sub.add_parser(
        "resend", parents=[actor, sending], help="queue a reply again (REPLY_ID as `show` lists it)"
    )
    p.add_argument("reply_id", type=int, metavar="REPLY_ID")
    p.add_argument("--reason", help="why, for the audit trail")
    p.set_defaults(func=cmd_resend, needs=NO_SERVER)

    p = sub.add_parser(
        "mark-answered",
        parents=[actor],
        help="correspondence a person has answered: off the list of what needs a person (nothing is sent)",
    )
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--reason", help="how it was answered, for the audit trail")
    p.set_defaults(func=cmd_mark_answered, needs=NO_SERVER)

    p = sub.add_parser(
        "reprocess",
        parents=[actor, sending],
        help="judge messages again from their stored bytes (dry run unless --apply)",
    )
    p.add_argument("ids", nargs="*", type=int, metavar="ID")
    p.add_argument("--all", action="store_true", help="every message of the event")
    p.add_argument("--apply", action="store_true", help="apply the changes and answer changed outcomes")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_reprocess, needs=NO_SERVER)
