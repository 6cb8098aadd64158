"""The outbox (every reply and its state, resend) and the audit trail (who did what)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request, url_for
from sqlalchemy import func, select

from intake.desk import actions
from intake.desk.preview import rehearse
from intake.domain import ReplyStatus, SubjectType
from intake.models import AuditEvent, Document, Reply
from intake.web.context import PAGE_SIZE, act, admin, desk, number, pages

blueprint = Blueprint("outbox", __name__)


@blueprint.get("/outbox")
def outbox() -> str:
    page = max(1, number(request.args.get("page"), 1))
    status = (request.args.get("status") or "").strip()
    event_id = desk().settings.event.id
    with desk().sessions() as session:
        query = select(Reply).where(Reply.event == event_id)
        if status:
            query = query.where(Reply.status == status)
        total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        replies = list(
            session.scalars(query.order_by(Reply.id.desc()).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))
        )
        counts = dict(
            session.execute(
                select(Reply.status, func.count()).where(Reply.event == event_id).group_by(Reply.status)
            ).all()
        )
    return render_template(
        "outbox.html",
        replies=replies,
        total=total,
        counts=counts,
        status=status,
        page=page,
        pages=pages(total),
        statuses=[s.value for s in ReplyStatus],
    )


@blueprint.get("/audit")
def audit_trail() -> str:
    page = max(1, number(request.args.get("page"), 1))
    actor = (request.args.get("actor") or "").strip()[:255]
    with desk().sessions() as session:
        query = select(AuditEvent)
        if actor:
            query = query.where(AuditEvent.actor == actor)
        total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        events = list(
            session.scalars(
                query.order_by(AuditEvent.id.desc()).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
            )
        )
        documents = {
            d.id: (d.number or d.filename, d.message_id)
            for d in session.scalars(
                select(Document).where(
                    Document.id.in_(
                        [e.subject_id for e in events if e.subject_type == SubjectType.DOCUMENT] or [-1]
                    )
                )
            )
        }
        replies = {
            r.id: r.message_id
            for r in session.scalars(
                select(Reply).where(
                    Reply.id.in_(
                        [e.subject_id for e in events if e.subject_type == SubjectType.REPLY] or [-1]
                    )
                )
            )
        }
    return render_template(
        "audit.html",
        events=events,
        documents=documents,
        replies=replies,
        total=total,
        page=page,
        pages=pages(total),
        actor=actor,
    )


@blueprint.route("/replies/<int:reply_id>/resend", methods=["GET", "POST"])
def resend(reply_id: int) -> Any:
    user = admin()
    d = desk()
    with d.sessions() as session:
        reply = session.get(Reply, reply_id)
        if reply is None:
            abort(404)
        summary = {
            "id": reply.id,
            "kind": reply.kind,
            "recipient": reply.recipient,
            "subject": reply.subject,
            "status": reply.status,
            "message": reply.message_id,
        }
    back = (
        url_for("submissions.message", message_id=summary["message"])
        if summary["message"]
        else url_for("outbox.outbox")
    )
    if request.method == "GET":
        rehearsal = rehearse(d.engine, lambda s: actions.resend(s, d.settings, reply_id, user.name))
        return render_template(
            "confirm.html", action="resend", m=summary, preview=None, rehearsal=rehearsal, back=back
        )
    reason = (request.form.get("reason") or "").strip() or None
    return act(lambda: actions.resend(d.sessions, d.settings, reply_id, user.name, reason=reason), back)
