"""The submissions: the filtered list, one message's page, and the actions on messages and
documents (admit, reject, release, reprocess, withdraw), each through a confirmation page.
Actions need the admin role (a viewer gets 403)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from sqlalchemy.orm import Session, sessionmaker

from intake.desk import Refused, actions, reprocess
from intake.desk.preview import rehearse
from intake.desk.show import details, find_message, original_text, unjudged_parts
from intake.domain import MESSAGE_ACTIONS, DeskAction, DocumentStatus, MessageStatus, meaning
from intake.listing import SORTS, LogFilter, count_messages, message_entries, read_when, status_counts
from intake.models import Document, InboundMessage, utcnow
from intake.replies.compose import time_left
from intake.web.attention import attention
from intake.web.context import EVENT_COOKIE, PAGE_SIZE, act, admin, deliver_soon, desk, number, pages

blueprint = Blueprint("submissions", __name__)

STATUSES = frozenset(s.value for s in MessageStatus)


def list_filter() -> tuple[LogFilter, dict[str, str], int, list[str]]:
    """The list's filter from the query string, and what in it cannot be read (refused, not
    ignored: a list that silently drops a date would look filtered and is not)."""
    args = {
        k: (request.args.get(k) or "").strip()[:200]
        for k in ("status", "since", "until", "sender", "q", "sort", "order")
    }
    page = max(1, number(request.args.get("page"), 1))
    per = min(MAX_PER_PAGE, max(MIN_PER_PAGE, number(request.args.get("per"), PAGE_SIZE)))
    sort = args["sort"] if args["sort"] in SORTS else "received"
    descending = args["order"] != "asc"
    event = desk().settings.event
    problems: list[str] = []
    bounds: dict[str, datetime | None] = {}
    for key, label in (("since", "From"), ("until", "Until")):
        try:
            bounds[key] = read_when(args[key], event.timezone, key == "until") if args[key] else None
        except ValueError as exc:
            bounds[key] = None
            problems.append(f"{label}: {exc}")
    if args["status"] and args["status"] not in STATUSES:
        problems.append(f"Status: there is no status {args['status']!r}")
    f = LogFilter(
        event=event.id,
        status=args["status"] or None,
        since=bounds["since"],
        until=bounds["until"],
        sender=args["sender"] or None,
        search=args["q"] or None,
        numbering=(event,),
        sort=sort,
        descending=descending,
        limit=per,
        offset=(page - 1) * per,
    )
    args["sort"], args["order"] = sort, "desc" if descending else "asc"
    args["per"] = str(per) if per != PAGE_SIZE else ""
    return f, args, page, problems


MIN_PER_PAGE, MAX_PER_PAGE = 5, 1000
# The list's columns that sort: (key of SORTS, heading), and the order a first click gives.
COLUMNS = (
    ("id", "#"),
    ("received", "Received"),
    ("status", "Status"),
    ("sender", "From"),
    ("subject", "Subject"),
)
NEWEST_FIRST = frozenset({"id", "received"})


def _query(base: dict[str, str], **more: str) -> dict[str, Any]:
    return {**base, **more}


def sort_links(args: dict[str, str], filters: dict[str, str]) -> list[dict[str, str]]:
    """Each sortable heading's link: a click sorts by it, a second click the other way."""
    links = []
    for key, heading in COLUMNS:
        current = args["sort"] == key
        if current:
            order = "asc" if args["order"] == "desc" else "desc"
        else:
            order = "desc" if key in NEWEST_FIRST else "asc"
        links.append(
            {
                "key": key,
                "heading": heading,
                "href": url_for("submissions.index", **_query(filters, sort=key, order=order)),
                "aria": ("descending" if args["order"] == "desc" else "ascending") if current else "",
            }
        )
    return links


@blueprint.get("/")
def index() -> Any:
    f, args, page, problems = list_filter()
    event = desk().settings.event
    filters = {k: args[k] for k in ("status", "since", "until", "sender", "q") if args[k]}
    with desk().sessions() as session:
        entries = [] if problems else message_entries(session, where=f)
        total = 0 if problems else count_messages(session, f)
        counts = status_counts(session, event.id)
        panel = attention(session, desk().settings)
    page_text = render_template(
        "list.html",
        entries=entries,
        total=total,
        counts=counts,
        all_count=sum(counts.values()),
        args=args,
        page=page,
        pages=pages(total, f.limit or PAGE_SIZE),
        deadline=event.deadline,
        left=time_left(event.deadline, utcnow()),
        problems=problems,
        narrowed=f.narrowed,
        filters=filters,
        columns=sort_links(args, filters),
        paging={
            **filters,
            "sort": args["sort"],
            "order": args["order"],
            **({"per": args["per"]} if args["per"] else {}),
        },
        panel=panel,
        late_ids=[e["id"] for e in entries if e["status"] == MessageStatus.LATE],
    )
    return (page_text, 400) if problems else page_text


@blueprint.get("/messages/<int:message_id>")
def message(message_id: int) -> str:
    d = desk()
    with d.sessions() as session:
        try:
            found = details(session, d.settings.event, message_id)
            row = find_message(session, d.settings.event, message_id)
        except Refused:
            abort(404, description=f"there is no message #{message_id}")
        original = original_text(d.store, row)
        unjudged = unjudged_parts(d.store, row)
    possible = [str(a) for a in MESSAGE_ACTIONS if meaning(found["status"]).allows(a)]
    return render_template("message.html", m=found, original=original, possible=possible, unjudged=unjudged)


@blueprint.get("/numbers/<path:number>")
def by_number(number: str) -> Any:
    d = desk()
    with d.sessions() as session:
        try:
            row = find_message(session, d.settings.event, number)
        except Refused:
            abort(404, description="no document has that number")
    return redirect(url_for("submissions.message", message_id=row.id))


@blueprint.route("/messages/<int:message_id>/<action>", methods=["GET", "POST"])
def message_action(message_id: int, action: str) -> Any:
    if action not in MESSAGE_ACTIONS:
        abort(404)
    user = admin()
    d = desk()
    with d.sessions() as session:
        row = session.get(InboundMessage, message_id)
        if row is None:
            abort(404)
        summary = {
            "id": row.id,
            "subject": row.subject,
            "sender": row.sender,
            "status": row.status,
            # Spam or a forged sender: answering could reach an innocent person.
            "quiet": row.status == MessageStatus.HELD,
            # A reject refuses every document, the accepted and numbered ones too.
            "numbered": [
                doc.number for doc in row.documents if doc.number and doc.status == DocumentStatus.ACCEPTED
            ],
        }
    back = url_for("submissions.message", message_id=message_id)
    if request.method == "GET":
        preview = rehearsal = None
        if action == DeskAction.REPROCESS:
            try:
                preview = reprocess.plan(d.sessions, d.settings, [message_id])
            except Refused as exc:
                return render_template("done.html", ok=False, text=str(exc), back=back), 409
        else:
            rehearsal = rehearse(d.engine, _decision(action, message_id, user.name, REASON_SHOWN, {}))
        return render_template(
            "confirm.html", action=action, m=summary, preview=preview, rehearsal=rehearsal, back=back
        )
    if action == DeskAction.REPROCESS:
        return _reprocess(message_id, user.name, back)
    reason = (request.form.get("reason") or "").strip() or None
    run = _decision(action, message_id, user.name, reason, request.form)
    return act(lambda: run(d.sessions), back)


# What a rehearsed reply says where the person's reason will go (the page asks for it below).
REASON_SHOWN = "[the reason you write below]"


def _decision(
    action: str, message_id: int, actor: str, reason: str | None, form: Mapping[str, str]
) -> Callable[[sessionmaker[Session]], actions.Done]:
    """The action as the form asks for it, on the sessions it is given (real, or a rehearsal's)."""
    settings = desk().settings
    if action == DeskAction.REJECT:
        notify = form.get("notify", "yes") == "yes"
        return lambda s: actions.reject(s, settings, message_id, actor, reason or "", notify=notify)
    if action == DeskAction.MARK_ANSWERED:
        return lambda s: actions.mark_answered(s, settings, message_id, actor, reason=reason)
    decide = actions.admit if action == DeskAction.ADMIT else actions.release
    revision_of = (form.get("revision_of") or "").strip() or None
    as_new = form.get("as_new") == "yes"
    return lambda s: decide(
        s, settings, message_id, actor, reason=reason, revision_of=revision_of, as_new=as_new
    )


@blueprint.post("/event")
def switch_event() -> Any:
    """Act on another event of the configuration: remembered in a cookie for this browser."""
    wanted = (request.form.get("event") or "").strip()
    known = {s.event.id for s in desk().events}
    if wanted not in known:
        abort(404, description=f"there is no event {wanted!r} here")
    response = redirect(url_for("submissions.index"))
    response.set_cookie(
        EVENT_COOKIE,
        wanted,
        httponly=True,
        samesite="Strict",
        secure=desk().options.secure_cookies,
        max_age=365 * 24 * 3600,
    )
    return response


MAX_BULK = 200


@blueprint.post("/bulk/admit")
def bulk_admit() -> Any:
    """Admit several late messages with one reason: the ticked rows, then a confirmation page
    (which previews every acknowledgement), then one admit per message, each its own
    transaction and audit entry; one that no longer applies is named and skipped."""
    user = admin()
    d = desk()
    ids = sorted({number(v, 0) for v in request.form.getlist("ids")} - {0})[:MAX_BULK]
    back = url_for("submissions.index", status=MessageStatus.LATE)
    if not ids:
        return render_template("done.html", ok=False, text="No message was ticked.", back=back), 400
    reason = (request.form.get("reason") or "").strip() or None
    if request.form.get("confirm") != "yes":
        with d.sessions() as session:
            rows = [session.get(InboundMessage, i) for i in ids]
            mine = [r for r in rows if r is not None and r.event == d.settings.event.id]
            chosen = [
                {"id": r.id, "subject": r.subject, "sender": r.sender, "status": r.status} for r in mine
            ]
        ids = [r.id for r in mine]
        rehearsal = rehearse(d.engine, lambda s: _admit_all(s, ids, user.name, None))
        return render_template("bulk.html", chosen=chosen, rehearsal=rehearsal, back=back)
    done = _admit_all(d.sessions, ids, user.name, reason)
    if done.reply_ids:
        deliver_soon()
    return render_template("done.html", ok=bool(done.numbers), text=done.summary, back=back)


def _admit_all(
    sessions: sessionmaker[Session], ids: list[int], actor: str, reason: str | None
) -> actions.Done:
    """Admit each message in turn; what was done and what was refused, in one summary."""
    settings = desk().settings
    lines: list[str] = []
    numbers: list[str] = []
    replies: list[int] = []
    for message_id in ids:
        try:
            done = actions.admit(sessions, settings, message_id, actor, reason=reason)
        except Refused as exc:
            lines.append(f"not admitted: {exc}")
            continue
        lines.append(done.summary)
        numbers.extend(done.numbers)
        replies.extend(done.reply_ids)
    return actions.Done("; ".join(lines), None, tuple(numbers), tuple(replies))


def _reprocess(message_id: int, actor: str, back: str) -> Any:
    d = desk()
    try:
        report = reprocess.apply(d.sessions, d.settings, actor, [message_id])
    except Refused as exc:
        return render_template("done.html", ok=False, text=str(exc), back=back), 409
    if report.queued:
        deliver_soon()
    changed = report.changed
    text = (
        f"message #{message_id} judged again: "
        + ("; ".join(changed[0].lines) if changed else "nothing changed")
        + (f"; {report.replies[0]}" if report.replies else "")
    )
    if report.left_alone:
        text += f"; not changed: {report.left_alone[0].left_alone}"
    return render_template("done.html", ok=True, text=text, back=back)


@blueprint.route("/documents/<int:document_id>/withdraw", methods=["GET", "POST"])
def withdraw(document_id: int) -> Any:
    user = admin()
    d = desk()
    with d.sessions() as session:
        document = session.get(Document, document_id)
        if document is None or not document.number:
            abort(404, description="no numbered document with that id")
        doc_number, message_id = document.number, document.message_id
        withdrawn = document.status == DocumentStatus.WITHDRAWN
    back = url_for("submissions.message", message_id=message_id)
    if request.method == "GET":
        return render_template(
            "confirm.html",
            action="withdraw",
            m={"id": message_id, "number": doc_number, "withdrawn": withdrawn},
            preview=None,
            back=back,
        )
    reason = (request.form.get("reason") or "").strip()
    return act(lambda: actions.withdraw(d.sessions, d.settings, doc_number, user.name, reason), back)
