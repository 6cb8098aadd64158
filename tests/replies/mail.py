"""Realistic inbound messages for the screening tests, as raw bytes."""

from __future__ import annotations

from intake.parse import Inbound, parse_message


def message(headers: str, body: str = "Please find my contribution attached.\n") -> Inbound:
    """Parse a message whose headers are given one per line (LF is fine)."""
    raw = headers.strip("\n").replace("\n", "\r\n") + "\r\n\r\n" + body.replace("\n", "\r\n")
    return parse_message(raw.encode("utf-8"))


def human(extra: str = "", subject: str = "Input contribution on avatars") -> Inbound:
    """A plain message from a person, plus `extra` header lines."""
    return message(
        f"""Return-Path: <alice@example.org>
From: Alice Martin <alice@example.org>
To: tsbjcamv@itu.int
Subject: {subject}
Date: Mon, 20 Apr 2026 10:00:00 +0200
Message-ID: <CAF1234abc@mail.example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
{extra}"""
    )


# A person writing from Exchange/Outlook: X-Auto-Response-Suppress is on
# ordinary mail (Discourse's quirks_exchange_xars), so this must get a reply.
EXCHANGE_HUMAN = """Return-Path: <j.dupont@contoso.com>
Received: from AM0PR02MB1234.eurprd02.prod.outlook.com by mx.itu.int; Mon, 20 Apr 2026 08:01:02 +0000
From: "Dupont, Jean" <j.dupont@contoso.com>
To: "tsbjcamv@itu.int" <tsbjcamv@itu.int>
Subject: Contribution to JCA-MV: digital twins
Thread-Topic: Contribution to JCA-MV: digital twins
Thread-Index: AdqS1b2n3Xf8k2RzT0mX0a1b2c3d4e==
Date: Mon, 20 Apr 2026 08:00:59 +0000
Message-ID: <AM0PR02MB12345678ABCDEF@AM0PR02MB1234.eurprd02.prod.outlook.com>
Accept-Language: fr-FR, en-US
Content-Language: en-US
X-MS-Has-Attach: yes
X-MS-TNEF-Correlator:
X-Auto-Response-Suppress: All
X-MS-Exchange-Organization-AuthAs: Anonymous
Authentication-Results: spf=pass (sender IP is 40.107.1.2)
 smtp.mailfrom=contoso.com; dkim=pass (signature was verified)
 header.d=contoso.com;dmarc=pass action=none header.from=contoso.com;compauth=pass
 reason=100
MIME-Version: 1.0
Content-Type: text/plain; charset="us-ascii"
"""

GMAIL_HUMAN = """Return-Path: <li.wei.research@gmail.com>
Received: from mail-ej1-f41.google.com (mail-ej1-f41.google.com [209.85.218.41])
 by mx.itu.int; Mon, 20 Apr 2026 09:12:13 +0000
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=gmail.com; s=20230601;
 h=to:subject:message-id:date:from:mime-version; bh=abc=; b=def=
From: =?UTF-8?B?5p2O5Lyf?= <li.wei.research@gmail.com>
To: tsbjcamv@itu.int
Subject: =?UTF-8?B?5YWD5a6H5a6Z5qCH5YeG5YyW6L6T5YWl?=
Date: Mon, 20 Apr 2026 17:12:01 +0800
Message-ID: <CAKx9vQ1xyz+abc=@mail.gmail.com>
Authentication-Results: mx.itu.int; spf=pass smtp.mailfrom=gmail.com; dkim=pass header.d=gmail.com;
 dmarc=pass (p=NONE sp=QUARANTINE dis=NONE) header.from=gmail.com
MIME-Version: 1.0
Content-Type: text/plain; charset="UTF-8"
"""

# Exchange Online's out-of-office reply.
EXCHANGE_OOF = """Return-Path: <j.dupont@contoso.com>
From: "Dupont, Jean" <j.dupont@contoso.com>
To: "tsbjcamv@itu.int" <tsbjcamv@itu.int>
Subject: Automatic reply: Your contribution JCA-MV-I-004
Thread-Topic: Your contribution JCA-MV-I-004
Date: Mon, 20 Apr 2026 08:05:00 +0000
Message-ID: <5d0b0f3c9d8a4b1e@AM0PR02MB1234.eurprd02.prod.outlook.com>
In-Reply-To: <intake.00112233445566778899aabbccddeeff@itu.int>
Auto-Submitted: auto-generated
X-Auto-Response-Suppress: All
X-MS-Exchange-Inbox-Rules-Loop: j.dupont@contoso.com
X-MS-Exchange-Generated-Message-Source: Mailbox Rules Agent
MIME-Version: 1.0
Content-Type: text/plain; charset="us-ascii"
"""

# Gmail's vacation responder: the subject is whatever the user typed.
GMAIL_VACATION = """Return-Path: <li.wei.research@gmail.com>
From: Li Wei <li.wei.research@gmail.com>
To: tsbjcamv@itu.int
Subject: Away until 4 May
Date: Mon, 20 Apr 2026 17:13:00 +0800
Message-ID: <CAKx9vQ2vacation@mail.gmail.com>
In-Reply-To: <intake.00112233445566778899aabbccddeeff@itu.int>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: text/plain; charset="UTF-8"
"""

# An old-style out-of-office made by an Outlook client rule: only the subject tells.
OUTLOOK_RULE_OOF = """Return-Path: <m.rossi@example.it>
From: Mario Rossi <m.rossi@example.it>
To: tsbjcamv@itu.int
Subject: Risposta automatica: Your contribution
Date: Mon, 20 Apr 2026 10:05:00 +0200
Message-ID: <abc.123@example.it>
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"
"""

# Postfix's delivery-status notification (a bounce of one of our replies).
POSTFIX_BOUNCE_HEADERS = """Return-Path: <>
Received: by mx.example.net (Postfix) id 4XyZ1; Mon, 20 Apr 2026 10:00:05 +0200 (CEST)
Date: Mon, 20 Apr 2026 10:00:05 +0200 (CEST)
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: tsbjcamv@itu.int
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="4XyZ1.1713600005/mx.example.net"
Message-Id: <20260420080005.4XyZ1@mx.example.net>
"""
POSTFIX_BOUNCE_BODY = """This is a MIME-encapsulated message.

--4XyZ1.1713600005/mx.example.net
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.net.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<gone@example.net>: host mail.example.net said: 550 5.1.1 User unknown

--4XyZ1.1713600005/mx.example.net
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Mon, 20 Apr 2026 10:00:04 +0200 (CEST)

Final-Recipient: rfc822; gone@example.net
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--4XyZ1.1713600005/mx.example.net
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: ITU-T JCA-MV secretariat <tsbjcamv@itu.int>
To: gone@example.net
Subject: Re: My input
Message-ID: <intake.00112233445566778899aabbccddeeff@itu.int>

--4XyZ1.1713600005/mx.example.net--
"""

# A post relayed by Mailman 3.
MAILMAN_POST = """Return-Path: <metaverse-list-bounces+tsbjcamv=itu.int@lists.example.org>
From: Bob Stone <bob@example.com>
To: metaverse-list@lists.example.org
Subject: [metaverse-list] Draft liaison statement
Date: Mon, 20 Apr 2026 11:00:00 +0000
Message-ID: <20260420110000.bob@example.com>
Precedence: list
List-Id: Metaverse discussion <metaverse-list.lists.example.org>
List-Post: <mailto:metaverse-list@lists.example.org>
List-Unsubscribe: <mailto:metaverse-list-leave@lists.example.org>
X-BeenThere: metaverse-list@lists.example.org
X-Mailman-Version: 3.3.9
Sender: metaverse-list-bounces@lists.example.org
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"
"""

SPAMASSASSIN = """Return-Path: <promo@cheap-meds.example>
From: Promo <promo@cheap-meds.example>
To: tsbjcamv@itu.int
Subject: Contribution for your meeting
Date: Mon, 20 Apr 2026 11:00:00 +0000
Message-ID: <spam.1@cheap-meds.example>
X-Spam-Flag: YES
X-Spam-Status: Yes, score=9.1 required=5.0 tests=BAYES_99,URIBL_BLACK autolearn=no
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"
"""

# Forged From: our server (authserv-id mx.itu.int) found DMARC failed.
DMARC_FAIL = """Return-Path: <bounce@attacker.example>
Authentication-Results: mx.itu.int; spf=pass smtp.mailfrom=attacker.example; dkim=none;
 dmarc=fail (p=REJECT sp=REJECT dis=NONE) header.from=example.org
From: Alice Martin <alice@example.org>
To: tsbjcamv@itu.int
Subject: My contribution
Date: Mon, 20 Apr 2026 11:00:00 +0000
Message-ID: <forged.1@attacker.example>
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"
"""
