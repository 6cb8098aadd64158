"""The dashboard as one Flask app: the desk's state and four blueprints, by what they serve.

`signin` (who is asking; sign-in and out), `submissions` (the list, a message,
the actions), `outbox` (replies and the audit trail), `downloads` (files and
exports); `security` the headers, CSRF and error pages every response shares.
The pages have no script at all, so the Content-Security-Policy forbids every
one; everything a contributor sent reaches a page only through Jinja2's
autoescaping.
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import Flask

from intake import db
from intake.config import Settings
from intake.domain import MessageStatus
from intake.store import BlobStore
from intake.web import downloads, outbox, security, signin, submissions
from intake.web.context import Desk, desk, when
from intake.web.options import WebOptions


def create_app(
    settings: Settings, options: WebOptions | None = None, events: Sequence[Settings] = ()
) -> Flask:
    """The dashboard on `settings`' event; `events`: every event it may switch to (one database)."""
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024, TEMPLATES_AUTO_RELOAD=False)
    engine = db.make_engine(settings.database_url)
    app.extensions["intake"] = Desk(
        settings=settings,
        options=options or WebOptions(),
        engine=engine,
        sessions=db.make_sessionmaker(engine),
        store=BlobStore(settings.data_dir),
        events=tuple(e for e in events if e.database_url == settings.database_url) or (settings,),
    )
    app.jinja_env.globals.update(when=when, STATUS_ORDER=[s.value for s in MessageStatus])
    app.context_processor(lambda: {"event": desk().settings.event, "event_choices": desk().events})
    security.install(app)
    for blueprint in (signin.blueprint, submissions.blueprint, outbox.blueprint, downloads.blueprint):
        app.register_blueprint(blueprint)
    return app
