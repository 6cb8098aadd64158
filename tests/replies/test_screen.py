"""Screening: who never gets a reply. Each rule both ways, then real header sets."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake.addresses import deliverable_address
from intake.config import ConfigError, EventSettings
from intake.config.screening import RULE_NAMES, parse_screening
from intake.domain import MessageStatus
from intake.parse import Inbound
from intake.screen import (
    CHAIN,
    AutoReplyHeader,
    AutoSubmitted,
    BulkPrecedence,
    DeliveryReport,
    DmarcFail,
    EmptyReturnPath,
    MailingList,
    OutOfOfficeSubject,
    OwnAddress,
    OwnMessageId,
    RobotSender,
    SpamFlag,
    XLoop,
    authentication_results,
    reply_address,
    screen,
)
from tests.replies import mail
from tests.replies.mail import human, message


def with_screening(event: EventSettings, **table: Any) -> EventSettings:
    return dataclasses.replace(event, screening=parse_screening(table))


# --- one test per rule, both directions -------------------------------------------------


def test_own_address_in_from_reply_to_or_return_path(event: EventSettings) -> None:
    rule = OwnAddress()
    assert not rule.check(human(), event)
    ours = message("From: ITU-T JCA-MV secretariat <TSBJCAMV@itu.int>\nTo: a@example.org\nSubject: Re: x")
    assert rule.check(ours, event)
    assert rule.check(human("Reply-To: tsbjcamv@itu.int"), event)
    assert "Reply-To" in rule.reason(human("Reply-To: tsbjcamv@itu.int"), event)
    bounce_path = message("Return-Path: <tsbjcamv@itu.int>\nFrom: x@example.org\nSubject: y")
    assert rule.check(bounce_path, event)


def test_own_address_includes_configured_aliases(event: EventSettings) -> None:
    alias = message("From: tsb-jcamv@itu.int\nTo: a@example.org\nSubject: x")
    assert not OwnAddress().check(alias, event)
    assert OwnAddress().check(alias, with_screening(event, own_addresses=["tsb-jcamv@itu.int"]))


def test_own_message_id(event: EventSettings) -> None:
    rule = OwnMessageId()
    ours = message(
        "From: someone@example.org\nSubject: x\nMessage-ID: <intake.00112233445566778899aabbccddeeff@ITU.INT>"
    )
    assert rule.check(ours, event)
    assert not rule.check(human(), event)
    # Our prefix on another domain, or our domain without the prefix, is not ours.
    assert not rule.check(message("From: a@b.org\nSubject: x\nMessage-ID: <intake.1@b.org>"), event)
    assert not rule.check(message("From: a@b.org\nSubject: x\nMessage-ID: <abc@itu.int>"), event)


@pytest.mark.parametrize(
    ("value", "hit"),
    [
        ("auto-replied", True),
        ("auto-generated", True),
        ("auto-notified", True),
        ("auto-replied; owner-email=li@example.cn", True),
        ("Auto-Generated", True),
        ("no", False),
        ("No", False),
        ("no; reason=human", False),
    ],
)
def test_auto_submitted(event: EventSettings, value: str, hit: bool) -> None:
    assert AutoSubmitted().check(human(f"Auto-Submitted: {value}"), event) is hit


def test_auto_submitted_absent(event: EventSettings) -> None:
    assert not AutoSubmitted().check(human(), event)


@pytest.mark.parametrize(
    ("value", "hit"),
    [
        ("bulk", True),
        ("junk", True),
        ("list", True),
        ("auto_reply", True),
        ("BULK", True),
        ("first-class", False),
        ("normal", False),
    ],
)
def test_precedence(event: EventSettings, value: str, hit: bool) -> None:
    assert BulkPrecedence().check(human(f"Precedence: {value}"), event) is hit


@pytest.mark.parametrize(
    ("header", "hit"),
    [
        ("X-Autoreply: yes", True),
        ("X-Autorespond: Out of office until Monday", True),
        ("X-Autoreply: no", False),
        ("X-Autorespond: false", False),
    ],
)
def test_auto_reply_headers(event: EventSettings, header: str, hit: bool) -> None:
    assert AutoReplyHeader().check(human(header), event) is hit


def test_auto_reply_headers_absent(event: EventSettings) -> None:
    assert not AutoReplyHeader().check(human(), event)


def test_x_loop(event: EventSettings) -> None:
    assert XLoop().check(human("X-Loop: majordomo@lists.example.org"), event)
    assert XLoop().check(human("X-Loop: yes"), event)
    assert not XLoop().check(human("X-Loop: no"), event)
    assert not XLoop().check(human(), event)


@pytest.mark.parametrize(
    "header",
    ["List-Id: <wg.lists.example.org>", "List-Unsubscribe: <mailto:leave@lists.example.org>"],
)
def test_mailing_list_headers(event: EventSettings, header: str) -> None:
    assert MailingList().check(human(header), event)


def test_mailing_list_absent(event: EventSettings) -> None:
    assert not MailingList().check(human("List-Archive: <https://example.org/>"), event)


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Input contribution",
        "Automatic reply: Input contribution",
        "Auto: Input contribution",
        "AutoReply: thank you",
        "[Out of office] back on Monday",
        "Abwesenheitsnotiz: Beitrag",
        "Automatische Antwort: Beitrag",
        "Réponse automatique : Contribution",
        "Respuesta automática: Contribución",
        "Risposta automatica: Contributo",
        "Fuori sede: Contributo",
        "Automatisch antwoord: Bijdrage",
        "Automatiskt svar: Bidrag",
        "Frånvaro: Bidrag",
        "Resposta automática: Contribuição",
        "自动回复: 输入文稿",
        "自動回覆：輸入文件",
        "自動応答: 寄書",
        "不在のお知らせ",
        "Автоматический ответ: Вклад",
        "Вне офиса: Вклад",
        "رد تلقائي: مساهمة",
        "자동 회신: 기고서",
    ],
)
def test_out_of_office_subjects(event: EventSettings, subject: str) -> None:
    assert OutOfOfficeSubject().check(human(subject=subject), event)


@pytest.mark.parametrize(
    "subject",
    [
        "Input contribution on avatars",
        "Automotive use cases for the metaverse",  # starts with "Auto", not "Auto:"
        "Autonomous agents",
        "Absence of interoperability profiles",
        "Outline of office-space digital twins",
        "Re: Out-of-band signalling",
        "Abwesenheitsliste für das Treffen",  # "Abwesenheitsliste" is not "abwesend"
        "Автоматизация процессов",
        "元宇宙标准化输入",
    ],
)
def test_ordinary_subjects_are_not_out_of_office(event: EventSettings, subject: str) -> None:
    assert not OutOfOfficeSubject().check(human(subject=subject), event)


def test_out_of_office_subjects_from_config(event: EventSettings) -> None:
    configured = with_screening(event, out_of_office_subjects=["Ferie:"])
    assert not OutOfOfficeSubject().check(human(subject="Ferie: tilbage 4. maj"), event)
    assert OutOfOfficeSubject().check(human(subject="Ferie: tilbage 4. maj"), configured)


@pytest.mark.parametrize(
    ("content_type", "words"),
    [
        ("multipart/report; report-type=delivery-status; boundary=x", "bounce"),
        ('multipart/report; report-type="disposition-notification"; boundary=x', "read receipt"),
        ("message/delivery-status", "bounce"),
    ],
)
def test_delivery_reports(event: EventSettings, content_type: str, words: str) -> None:
    inbound = message(f"From: a@example.org\nSubject: x\nContent-Type: {content_type}")
    assert DeliveryReport().check(inbound, event)
    assert words in DeliveryReport().reason(inbound, event)


def test_delivery_report_by_failed_recipients_and_not_for_mixed(event: EventSettings) -> None:
    assert DeliveryReport().check(human("X-Failed-Recipients: gone@example.net"), event)
    assert not DeliveryReport().check(
        message("From: a@example.org\nSubject: x\nContent-Type: multipart/mixed; boundary=b"),
        event,
    )


@pytest.mark.parametrize(
    "sender",
    [
        "MAILER-DAEMON@mx.example.net",
        "mailer_daemon@example.org",
        "postmaster@example.org",
        "noreply@example.org",
        "no-reply@example.org",
        "no_reply@example.org",
        "do-not-reply@example.org",
        "donotreply@example.org",
        "notifications-noreply@example.org",
        "noreply-dmarc-support@google.com",
    ],
)
def test_robot_senders(event: EventSettings, sender: str) -> None:
    assert RobotSender().check(message(f"From: {sender}\nSubject: x"), event)


@pytest.mark.parametrize(
    "sender",
    [
        "alice@example.org",
        "snoreply@example.org",
        "postman@example.org",
        "reply@example.org",
        "noreplyx@example.org",
    ],
)
def test_people_are_not_robot_senders(event: EventSettings, sender: str) -> None:
    assert not RobotSender().check(message(f"From: {sender}\nSubject: x"), event)


def test_empty_return_path(event: EventSettings) -> None:
    assert EmptyReturnPath().check(message("Return-Path: <>\nFrom: a@example.org\nSubject: x"), event)
    assert EmptyReturnPath().check(message("Return-Path: < >\nFrom: a@example.org\nSubject: x"), event)
    assert not EmptyReturnPath().check(human(), event)


@pytest.mark.parametrize(
    ("header", "hit"),
    [
        ("X-Spam-Flag: YES", True),
        ("X-Spam-Flag: yes", True),
        ("X-Spam-Status: Yes, score=7.2 required=5.0 tests=BAYES_99", True),
        ("X-Spam: Yes", True),
        ("X-Spam-Flag: NO", False),
        ("X-Spam-Status: No, score=-0.1 required=5.0 tests=DKIM_SIGNED", False),
    ],
)
def test_spam_flag(event: EventSettings, header: str, hit: bool) -> None:
    assert SpamFlag().check(human(header), event) is hit


def test_dmarc_fail_only_from_a_trusted_server(event: EventSettings) -> None:
    inbound = message(mail.DMARC_FAIL)
    assert not DmarcFail().check(inbound, event)  # default: trust no server
    assert DmarcFail().check(inbound, with_screening(event, trusted_authserv_ids=["mx.itu.int"]))
    assert DmarcFail().check(inbound, with_screening(event, trusted_authserv_ids=["MX.ITU.INT"]))
    assert not DmarcFail().check(inbound, with_screening(event, trusted_authserv_ids=["mx.other"]))


def test_dmarc_pass_or_a_comment_saying_fail_is_not_a_failure(event: EventSettings) -> None:
    trusting = with_screening(event, trusted_authserv_ids=["mx.itu.int"])
    passing = human("Authentication-Results: mx.itu.int; dmarc=pass header.from=example.org")
    assert not DmarcFail().check(passing, trusting)
    sneaky = human("Authentication-Results: mx.itu.int; spf=pass (dmarc=fail) smtp.mailfrom=example.org")
    assert not DmarcFail().check(sneaky, trusting)


def test_dmarc_fail_from_exchange_online_without_authserv_id(event: EventSettings) -> None:
    exchange = (
        "Authentication-Results: spf=fail (sender IP is 203.0.113.9) smtp.mailfrom=example.org; "
        "dkim=none (message not signed) header.d=none;dmarc=fail action=quarantine "
        "header.from=example.org;compauth=fail reason=000"
    )
    inbound = human(exchange)
    assert not DmarcFail().check(inbound, event)
    trusting = with_screening(event, trust_unnamed_authentication_results=True)
    assert DmarcFail().check(inbound, trusting)
    # Only the topmost header (our server's) is believed; one lower down came with the mail.
    lower = message(
        "Authentication-Results: spf=pass smtp.mailfrom=example.org;dmarc=pass header.from=example.org\n"
        + exchange
        + "\nFrom: a@example.org\nSubject: x"
    )
    assert not DmarcFail().check(lower, trusting)


def test_authentication_results_parser() -> None:
    assert authentication_results(
        "mx.itu.int 1; dkim=pass (good) header.d=a.org; DMARC=Fail header.from=a.org"
    ) == ("mx.itu.int", {"dkim": "pass", "dmarc": "fail"})
    assert authentication_results("mx.itu.int; none") == ("mx.itu.int", {})
    assert authentication_results("spf=pass smtp.mailfrom=a.org")[0] is None


def test_x_auto_response_suppress_alone_is_not_automatic(event: EventSettings) -> None:
    for value in ("All", "DR, RN, NRN, OOF, AutoReply", "OOF", "AutoReply"):
        assert screen(human(f"X-Auto-Response-Suppress: {value}"), event) is None


# --- the decision, on realistic header sets ---------------------------------------------


@pytest.mark.parametrize("raw", [mail.EXCHANGE_HUMAN, mail.GMAIL_HUMAN])
def test_people_get_a_reply(event: EventSettings, raw: str) -> None:
    trusting = with_screening(event, trusted_authserv_ids=["mx.itu.int"])
    assert screen(message(raw), trusting) is None


@pytest.mark.parametrize(
    ("raw", "body", "rule"),
    [
        (mail.EXCHANGE_OOF, "I am out of the office until 4 May.\n", "auto-submitted"),
        (mail.GMAIL_VACATION, "I am travelling.\n", "auto-submitted"),
        (mail.OUTLOOK_RULE_OOF, "Sono fuori sede.\n", "out-of-office-subject"),
        (mail.POSTFIX_BOUNCE_HEADERS, mail.POSTFIX_BOUNCE_BODY, "delivery-report"),
        (mail.MAILMAN_POST, "Dear all,\n", "precedence"),
    ],
)
def test_automatic_mail_is_ignored(event: EventSettings, raw: str, body: str, rule: str) -> None:
    result = screen(message(raw, body), event)
    assert result is not None
    assert result.status is MessageStatus.IGNORED
    assert result.rule == rule
    assert result.reason.endswith(".") and "\n" not in result.reason


def test_mailman_post_without_precedence_is_still_a_list(event: EventSettings) -> None:
    raw = mail.MAILMAN_POST.replace("Precedence: list\n", "")
    result = screen(message(raw), event)
    assert result is not None and result.rule == "mailing-list"


def test_spam_is_held(event: EventSettings) -> None:
    result = screen(message(mail.SPAMASSASSIN), event)
    assert result is not None
    assert (result.status, result.rule) == (MessageStatus.HELD, "spam-flag")
    assert "spam" in result.reason


def test_dmarc_failure_is_held(event: EventSettings) -> None:
    trusting = with_screening(event, trusted_authserv_ids=["mx.itu.int"])
    result = screen(message(mail.DMARC_FAIL), trusting)
    assert result is not None
    assert (result.status, result.rule) == (MessageStatus.HELD, "dmarc-fail")
    assert "alice@example.org" in result.reason


def test_disabled_rule_is_skipped(event: EventSettings) -> None:
    inbound = human("List-Id: <wg.lists.example.org>")
    assert screen(inbound, event) is not None
    assert screen(inbound, with_screening(event, disabled_rules=["mailing-list"])) is None


def test_every_rule_has_a_name_and_a_sentence() -> None:
    names = [rule.name for rule, _ in CHAIN]
    assert len(names) == len(set(names))
    for rule, status in CHAIN:
        assert rule.description.endswith(".")
        assert status in (MessageStatus.IGNORED, MessageStatus.HELD)


header_names = st.sampled_from(
    [
        "Auto-Submitted",
        "Precedence",
        "X-Loop",
        "List-Id",
        "Return-Path",
        "Content-Type",
        "Authentication-Results",
        "X-Spam-Status",
        "Subject",
        "From",
        "Message-ID",
        "X-Autoreply",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(header_names, st.text(max_size=60)), max_size=8), st.text(max_size=40))
def test_screen_never_raises(event: EventSettings, headers: list[tuple[str, str]], subject: str) -> None:
    inbound = Inbound(
        message_id=dict(headers).get("Message-ID"),
        sender=dict(headers).get("From"),
        sender_name=None,
        reply_to=None,
        subject=subject,
        date=None,
        headers=tuple(headers),
        parts=(),
        text="",
        defects=(),
    )
    result = screen(inbound, with_screening(event, trusted_authserv_ids=["mx.itu.int"]))
    assert result is None or result.reason


# --- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"trusted_authserv_id": ["mx.itu.int"]}, "event.screening.trusted_authserv_id"),
        ({"trusted_authserv_ids": "mx.itu.int"}, "event.screening.trusted_authserv_ids"),
        ({"trusted_authserv_ids": ["mx.itu.int; x"]}, "event.screening.trusted_authserv_ids"),
        (
            {"trust_unnamed_authentication_results": "yes"},
            "event.screening.trust_unnamed_authentication_results",
        ),
        ({"own_addresses": ["not an address"]}, "event.screening.own_addresses"),
        ({"out_of_office_subjects": [" "]}, "event.screening.out_of_office_subjects"),
        ({"disabled_rules": ["no-such-rule"]}, "event.screening.disabled_rules"),
        ({"disabled_rules": ["own-address"]}, "event.screening.disabled_rules"),
    ],
)
def test_bad_screening_table(event: EventSettings, table: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_screening(table)
    assert raised.value.setting == key


def test_good_screening_table(event: EventSettings) -> None:
    config = parse_screening(
        {
            "trusted_authserv_ids": ["MX.itu.int"],
            "trust_unnamed_authentication_results": True,
            "own_addresses": ["TSB-jcamv@itu.int"],
            "out_of_office_subjects": ["Ferie:"],
            "disabled_rules": ["out-of-office-subject"],
        }
    )
    assert config.trusted_authserv_ids == {"mx.itu.int"}
    assert config.own_addresses == {"tsb-jcamv@itu.int"}
    assert config.disabled_rules == {"out-of-office-subject"}
    assert parse_screening({}) == event.screening  # the shipped event leaves every default


def test_the_rules_the_configuration_may_name_are_the_chain() -> None:
    assert tuple(rule.name for rule, _ in CHAIN) == RULE_NAMES


# --- reply addresses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("alice@example.org", "alice@example.org"),
        ("<Alice.Martin@Example.ORG>", "Alice.Martin@example.org"),
        ("li@例え.jp", "li@xn--r8jz45g.jp"),
        ("a@b.c\r\nBcc: victim@example.org", None),
        ('"quoted local"@example.org', None),
        ("alice@localhost", None),
        ("alice@@example.org", None),
        ("李伟@example.cn", None),  # needs SMTPUTF8
        ("a..b@example.org", None),
        ("", None),
    ],
)
def test_deliverable_address(value: str, expected: str | None) -> None:
    assert deliverable_address(value) == expected


def test_reply_address_prefers_a_sane_reply_to(event: EventSettings) -> None:
    assert reply_address(human("Reply-To: secretary@example.org"), event) == "secretary@example.org"
    assert reply_address(human("Reply-To: noreply@example.org"), event) == "alice@example.org"
    assert reply_address(human("Reply-To: tsbjcamv@itu.int"), event) == "alice@example.org"
    robot = message("From: noreply@example.org\nSubject: x")
    assert reply_address(robot, event) is None
