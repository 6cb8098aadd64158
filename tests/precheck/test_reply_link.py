"""The rejection reply links to the pre-check page when `[event] precheck_url` is set, in
both its parts, while a corrected version can still be sent; never otherwise."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from intake.config import EventSettings
from intake.replies.compose import compose_reply
from tests.replies.conftest import event  # noqa: F401  (the shipped event, as the reply tests use it)
from tests.replies.test_compose import NOW, context, parse

URL = "https://check.example.org/jca-mv/"


def _parts(event: EventSettings, kind: str = "rejection", now=NOW) -> tuple[str, str]:  # type: ignore[no-untyped-def]  # noqa: F811
    msg = parse(compose_reply(kind, context(), event, now).raw)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return text, html


def test_the_rejection_links_to_the_page_when_configured(event: EventSettings) -> None:  # noqa: F811
    text, html = _parts(dataclasses.replace(event, precheck_url=URL))
    assert f"check the corrected document on this page, in seconds and without sending it: {URL}" in text
    assert f'<a href="{URL}">{URL}</a>' in html


def test_no_link_without_the_setting_or_after_the_deadline(event: EventSettings) -> None:  # noqa: F811
    for text, html in (
        _parts(event),
        _parts(dataclasses.replace(event, precheck_url=URL), now=event.deadline + timedelta(hours=1)),
    ):
        assert "check the corrected document" not in text and "check the corrected document" not in html


def test_an_acknowledgement_does_not_link_to_it(event: EventSettings) -> None:  # noqa: F811
    text, html = _parts(dataclasses.replace(event, precheck_url=URL), kind="acknowledgement")
    assert URL not in text and URL not in html
