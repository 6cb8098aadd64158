"""Every setting's one definition: its table and name, its environment variable, its default
as an operator reads it, and what it means. The loader takes its environment variables and
secret files from here (`ENVIRONMENT`, `SECRET_KEYS`), and `docs/configuration.md` is
generated from it (`python -m intake.config.doc`); a test fails when the loader reads a key
this table does not define."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    table: str  # service, imap, smtp, event, event.replies, event.screening
    name: str
    default: str  # as the documentation shows it
    meaning: str
    env: str | None = None  # its environment variable, if it has one
    from_file: bool = False  # may also come from a file: <env>_FILE, or <name>_file in the TOML

    @property
    def setting(self) -> str:
        return f"{self.table}.{self.name}"


_REQUIRED = "(required)"
_IMAP_TOKEN = 'XOAUTH2 (with `auth = "xoauth2"`): '

KEYS: tuple[Key, ...] = (
    # --- [service] -------------------------------------------------------------------------
    Key(
        "service",
        "data_dir",
        "`var`",
        "raw messages and attachments, stored by SHA-256 under `blobs/`",
        "INTAKE_DATA_DIR",
    ),
    Key(
        "service",
        "database_url",
        "`sqlite:///var/intake.db` (under `data_dir`)",
        "SQLite for one machine; `postgresql://user:pw@host/db` in production",
        "INTAKE_DATABASE_URL",
        from_file=True,
    ),
    Key("service", "log_level", "`info`", "`debug`, `info`, `warning`, `error`", "INTAKE_LOG_LEVEL"),
    Key(
        "service",
        "poll_interval",
        "`60`",
        "seconds between polls when running as a service",
        "INTAKE_POLL_INTERVAL",
    ),
    Key(
        "service",
        "workers",
        "cores − 1, at least 1",
        "processes that parse, screen and judge mail while the poller fetches and records "
        "(`intake/examine.py`); the poller examines messages under 1 MiB of a batch itself while it "
        "waits for them; `0` examines in the poller alone. A batch under 16 messages is always "
        "examined in the poller",
        "INTAKE_WORKERS",
    ),
    Key(
        "service",
        "outbox_interval",
        "`30`",
        "seconds between runs of the outbox (sending replies, copying them to Sent)",
    ),
    Key(
        "service",
        "max_backoff",
        "`300`",
        "seconds: after a failure (a server or the database away) the service tries again with growing "
        "delays, never more than this apart (or the job's interval, when longer); the recovery time the "
        "operator's guide promises",
        "INTAKE_MAX_BACKOFF",
    ),
    Key(
        "service",
        "metrics_host",
        "`127.0.0.1`",
        "where `intake run` serves `/healthz` and `/metrics`",
        "INTAKE_METRICS_HOST",
    ),
    Key(
        "service",
        "metrics_port",
        "`0` (off)",
        "the port of `/healthz` and `/metrics`; 0 serves neither",
        "INTAKE_METRICS_PORT",
    ),
    Key(
        "service",
        "desk_url",
        "—",
        "the desk's public address (`https://…/`, where `intake web` is served); the daily digest "
        "links to each message that needs a person there",
        "INTAKE_DESK_URL",
    ),
    # --- [imap] ----------------------------------------------------------------------------
    Key("imap", "host", _REQUIRED, "the mailbox's IMAP server", "INTAKE_IMAP_HOST"),
    Key("imap", "port", "993 (`ssl`), 143 otherwise", "", "INTAKE_IMAP_PORT"),
    Key("imap", "user", _REQUIRED, "", "INTAKE_IMAP_USER"),
    Key("imap", "password", "(required for `login`)", "", "INTAKE_IMAP_PASSWORD", from_file=True),
    Key(
        "imap",
        "tls",
        "`ssl`",
        "`ssl` (implicit TLS), `starttls`, or `none` (loopback tests only). "
        "Certificates are always verified.",
        "INTAKE_IMAP_TLS",
    ),
    Key("imap", "ca_file", "system CAs", "a private CA bundle", "INTAKE_IMAP_CA_FILE"),
    Key("imap", "folder", "`INBOX`", "where submissions arrive", "INTAKE_IMAP_FOLDER"),
    Key(
        "imap",
        "auth",
        "`login`",
        "`login` (user and password) or `xoauth2` (an OAuth2 access token; "
        "give exactly one token source below). See [oauth2.md](oauth2.md) for Microsoft 365 and Gmail",
        "INTAKE_IMAP_AUTH",
    ),
    Key(
        "imap",
        "token_command",
        "—",
        _IMAP_TOKEN + "a command that prints an access token, or JSON "
        '`{"access_token": …, "expires_in": seconds}` (then kept until 5 minutes before it expires); '
        "run without a shell",
        "INTAKE_IMAP_TOKEN_COMMAND",
    ),
    Key(
        "imap",
        "token_file",
        "—",
        _IMAP_TOKEN + "a file holding a current access token, kept fresh by "
        "something else; read at every sign-in",
        "INTAKE_IMAP_TOKEN_FILE",
    ),
    Key(
        "imap",
        "oauth_tenant",
        "—",
        _IMAP_TOKEN + "Microsoft 365 client-credentials flow: the Entra tenant (directory) ID or domain…",
        "INTAKE_IMAP_OAUTH_TENANT",
    ),
    Key(
        "imap",
        "oauth_client_id",
        "—",
        "…the app registration's application (client) ID…",
        "INTAKE_IMAP_OAUTH_CLIENT_ID",
    ),
    Key(
        "imap",
        "oauth_client_secret",
        "—",
        "…and its client secret; all three together",
        "INTAKE_IMAP_OAUTH_CLIENT_SECRET",
        from_file=True,
    ),
    Key(
        "imap",
        "oauth_authority",
        "`https://login.microsoftonline.com/`",
        "the Entra endpoint (another cloud, or a test server); https only",
        "INTAKE_IMAP_OAUTH_AUTHORITY",
    ),
    Key(
        "imap",
        "oauth_scope",
        "`https://outlook.office365.com/.default`",
        "what the token is for; the default covers IMAP and SMTP",
    ),
    Key("imap", "connect_timeout", "15", "seconds"),
    Key("imap", "read_timeout", "120", "seconds"),
    Key("imap", "batch_messages", "100", "at most this many messages per FETCH…"),
    Key("imap", "batch_bytes", "52428800", "…and at most this many bytes (sizes are read first)"),
    Key(
        "imap",
        "max_message_bytes",
        "41943040",
        "a larger message is recorded from its headers alone "
        "and refused as too large; its body is never downloaded",
    ),
    Key(
        "imap",
        "file_messages",
        "`true`",
        "after recording, move each message to a folder named for its outcome",
    ),
    Key(
        "imap",
        "filing_root",
        "`Intake`",
        "those folders: `Intake/Accepted`, `Intake/Rejected`, `Intake/Late`, … (created when missing)",
    ),
    Key("imap", "sent_folder", "`Sent`", "a copy of each reply sent is appended here; empty: no copy"),
    Key(
        "imap",
        "idle",
        "`false`",
        "`intake run`: IMAP IDLE, so new mail is picked up at once (polling goes on beside it)",
        "INTAKE_IMAP_IDLE",
    ),
    # --- [smtp] ----------------------------------------------------------------------------
    Key("smtp", "host", _REQUIRED, "the server replies are sent through", "INTAKE_SMTP_HOST"),
    Key("smtp", "port", "587 (`starttls`), 465 (`ssl`), 25 (`none`)", "", "INTAKE_SMTP_PORT"),
    Key("smtp", "user", "none (no AUTH)", "", "INTAKE_SMTP_USER"),
    Key("smtp", "password", "(required with `user`)", "", "INTAKE_SMTP_PASSWORD", from_file=True),
    Key("smtp", "tls", "`starttls`", "`starttls`, `ssl` or `none`", "INTAKE_SMTP_TLS"),
    Key("smtp", "ca_file", "system CAs", "", "INTAKE_SMTP_CA_FILE"),
    Key("smtp", "timeout", "60", "seconds"),
    Key(
        "smtp",
        "claim_lease",
        "600",
        "seconds after which a reply claimed by a sender that died may be "
        "sent by another replica (never less than two timeouts)",
    ),
    Key(
        "smtp",
        "auth",
        "`login`",
        "`login`: AUTH with `user` and `password` when `user` is set; `xoauth2`: AUTH XOAUTH2",
        "INTAKE_SMTP_AUTH",
    ),
    Key(
        "smtp",
        "token_command",
        "the `[imap]` token source",
        "XOAUTH2 only: a token source of SMTP's "
        "own, with the same keys as in `[imap]` (`token_command`, `token_file`, `oauth_*`). Without one, "
        "SMTP uses the IMAP token (one app registration, one token for both), and `user` defaults to "
        "`imap.user`",
    ),
    Key("smtp", "token_file", "—", "as `token_command`"),
    Key("smtp", "oauth_tenant", "—", "as `token_command`"),
    Key("smtp", "oauth_client_id", "—", "as `token_command`"),
    Key("smtp", "oauth_client_secret", "—", "as `token_command`", from_file=True),
    Key("smtp", "oauth_authority", "`https://login.microsoftonline.com/`", "as `token_command`"),
    Key("smtp", "oauth_scope", "`https://outlook.office365.com/.default`", "as `token_command`"),
    # --- [event] ---------------------------------------------------------------------------
    Key("event", "id", _REQUIRED, "a short stable name, stored with every record"),
    Key("event", "name", _REQUIRED, 'e.g. "2nd meeting of the JCA on Metaverse Standardization"'),
    Key("event", "group", _REQUIRED, 'e.g. "Joint Coordination Activity on Metaverse Standardization"'),
    Key("event", "acronym", _REQUIRED, 'e.g. "JCA-MV"'),
    Key(
        "event",
        "address",
        _REQUIRED,
        "the address contributors write to; never answered when it is the sender",
        "INTAKE_EVENT_ADDRESS",
    ),
    Key("event", "address_name", "—", "the display name on replies"),
    Key("event", "meeting_place", _REQUIRED, 'e.g. "Geneva"'),
    Key("event", "meeting_date", _REQUIRED, "e.g. 2026-05-13"),
    Key("event", "preregistration_deadline", "—", "a date, quoted in acknowledgements"),
    Key(
        "event",
        "deadline",
        _REQUIRED,
        "local date-time without offset, e.g. `2026-04-30T23:59:59`",
        "INTAKE_DEADLINE",
    ),
    Key(
        "event",
        "timezone",
        "`Europe/Zurich`",
        "an IANA zone name; the deadline is in this zone",
        "INTAKE_TIMEZONE",
    ),
    Key("event", "grace_minutes", "0", "minutes after the deadline still counted on time"),
    Key(
        "event",
        "late_policy",
        "`hold`",
        "`hold`: late documents are kept as `late` for the secretariat to admit; `reject`",
    ),
    Key(
        "event",
        "template",
        "—",
        "the blank template (.docx) documents are judged against, and attached "
        "to rejections; relative to the config file",
    ),
    Key("event", "numbering_prefix", "—", "accepted documents are numbered `JCA-MV-I-001`, …"),
    Key("event", "numbering_width", "3", "digits of the number"),
    Key(
        "event",
        "max_attachment_mb",
        "25",
        "the largest file the pre-check page (`intake precheck`) takes; a larger upload is answered 413",
    ),
    Key(
        "event",
        "precheck_url",
        "—",
        "the pre-check page's public address (`https://…/`); rejections and the correspondence "
        "notice link to it when set",
        "INTAKE_PRECHECK_URL",
    ),
    Key(
        "event",
        "digest_to",
        "— (no digest)",
        "an address or a list of addresses (the secretariat's) that `intake run` sends the daily "
        "digest to (`intake digest --send` too); from the environment, separated by commas",
        "INTAKE_DIGEST_TO",
    ),
    Key(
        "event",
        "digest_at",
        '`"08:00"`',
        "when `intake run` sends the daily digest: a time of day in the event's `timezone`, "
        '`"HH:MM"` or `"HH:MM:SS"`; a service started after it that day, with the day\'s digest '
        "not yet sent, sends it at start",
        "INTAKE_DIGEST_AT",
    ),
    Key("event", "checks", "see below", "how documents are judged: `[event.checks]`"),
    Key("event", "screening", "see below", "which mail is never answered or is held: `[event.screening]`"),
    Key("event", "replies", "see below", "how replies are written and sent: `[event.replies]`"),
    # --- [event.replies] -------------------------------------------------------------------
    Key(
        "event.replies",
        "templates_dir",
        "the shipped `config/replies`",
        "the Jinja2 templates of the "
        "replies (`<kind>.txt.j2`, `<kind>.html.j2`); relative to the config file",
    ),
    Key(
        "event.replies",
        "template_link",
        "—",
        "a web address of the blank template, shown when it is not attached",
    ),
    Key(
        "event.replies",
        "attach_template",
        "`true`",
        "attach `event.template` to rejections, and to the correspondence notice when "
        "`template_link` is not set",
    ),
    Key(
        "event.replies",
        "zone_label",
        "the zone's abbreviation",
        'how local time is named in replies, e.g. "Geneva time"',
    ),
    Key(
        "event.replies",
        "daily_cap",
        "10",
        "at most this many replies to one address in 24 hours; the "
        "rest are recorded as suppressed (and one rejection per address and reason a day)",
    ),
    Key(
        "event.replies",
        "copy_to",
        "—",
        "an address or list of addresses (the secretariat's) that "
        "receive a copy of every reply, in the envelope only",
    ),
    Key(
        "event.replies",
        "correspondence_notice",
        "`true`",
        "send the correspondence notice (the message reached the secretariat; this mailbox takes "
        "input documents, and how to send one) to a person whose message carried no document; "
        "at most one a day per address. `false`: such messages are only listed for the secretariat",
    ),
    # --- [event.screening] -----------------------------------------------------------------
    Key(
        "event.screening",
        "trusted_authserv_ids",
        "`[]`",
        "the authserv-ids (your receiving server's "
        "name in `Authentication-Results`) whose DMARC verdict is believed; none by default",
    ),
    Key(
        "event.screening",
        "trust_unnamed_authentication_results",
        "`false`",
        "Exchange Online writes "
        "the header without an authserv-id; set true there (only the topmost header is believed)",
    ),
    Key(
        "event.screening",
        "own_addresses",
        "`[]`",
        "other addresses of the mailbox (aliases): mail from them is never answered",
    ),
    Key(
        "event.screening",
        "out_of_office_subjects",
        "`[]`",
        "extra subject beginnings that mark an automatic reply",
    ),
    Key(
        "event.screening",
        "disabled_rules",
        "`[]`",
        "screening rules to switch off by name (the two own-mail rules cannot be)",
    ),
)

ENVIRONMENT: dict[str, tuple[str, str]] = {k.env: (k.table, k.name) for k in KEYS if k.env}
# Settings that may come from a file (`<VARIABLE>_FILE`): the secrets, and the database URL,
# which carries a password.
SECRET_KEYS = {(k.table, k.name) for k in KEYS if k.from_file and k.env}
