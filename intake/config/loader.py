"""The loader: one TOML file, overridden by environment variables, validated at start.

This is the one config loader. Every setting an operator changes per deployment
has an environment variable (see `ENVIRONMENT`); secrets may also come from a
file (`*_FILE`). A wrong or missing setting raises `ConfigError`, which the CLI
prints as one line naming the setting, with exit code 2.

With no config file at all, the shipped JCA-MV 2nd-meeting event file is used,
so a container can run on environment variables alone.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from intake.addresses import deliverable_address
from intake.config.base import ConfigError, Secret, Unconfigured, shipped_config_dir
from intake.config.checks import Checks, parse_checks
from intake.config.keys import ENVIRONMENT as KEYS_ENVIRONMENT
from intake.config.keys import SECRET_KEYS as KEYS_SECRET
from intake.config.replies import RepliesConfig, default_replies, parse_replies
from intake.config.screening import ScreeningConfig, parse_screening

_T = TypeVar("_T")
_NO_DATE = datetime(2000, 1, 1)  # stands in for a date that is wrong, while the others are read
# What a command may need besides the event (always read): the mail servers.
SECTIONS = frozenset({"imap", "smtp"})

TLS_MODES = ("ssl", "starttls", "none")
AUTH_MODES = ("login", "xoauth2")
LATE_POLICIES = ("hold", "reject")
DEFAULT_EVENT_FILE = "jca-mv-2.toml"
DEFAULT_OAUTH_AUTHORITY = "https://login.microsoftonline.com/"
# App-only access to Exchange Online: covers IMAP.AccessAsApp and SMTP.SendAsApp.
DEFAULT_OAUTH_SCOPE = "https://outlook.office365.com/.default"


# Environment variable -> (TOML table, key), and the settings that may come from a file:
# both from each key's one definition (intake.config.keys). The table "event" is the event served.
ENVIRONMENT = KEYS_ENVIRONMENT
SECRET_KEYS = KEYS_SECRET


@dataclass(frozen=True)
class OAuthSettings:
    """Where XOAUTH2 access tokens come from (intake.oauth): exactly one source is set."""

    token_command: str | None = None  # prints a token, or JSON with access_token and expires_in
    token_file: Path | None = None  # holds a current token, kept fresh by something else
    tenant: str | None = None  # Microsoft 365 client-credentials flow: all three...
    client_id: str | None = None
    client_secret: Secret | None = None  # ...are set together
    authority: str = DEFAULT_OAUTH_AUTHORITY
    scope: str = DEFAULT_OAUTH_SCOPE


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    user: str
    password: Secret
    tls: str
    ca_file: Path | None
    folder: str
    auth: str
    connect_timeout: float
    read_timeout: float
    batch_messages: int
    batch_bytes: int
    max_message_bytes: int
    file_messages: bool
    filing_root: str
    oauth: OAuthSettings | None = None  # the XOAUTH2 token source, if one is configured
    sent_folder: str = "Sent"  # a copy of each reply sent is appended here ("" = none)
    idle: bool = False  # intake run: IMAP IDLE for instant pickup (polling stays on)

    @property
    def mailbox_key(self) -> str:
        """Names this mailbox in the database, independent of the password."""
        return f"{self.user}@{self.host}:{self.port}"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str | None
    password: Secret | None
    tls: str
    ca_file: Path | None
    timeout: float
    auth: str = "login"  # "login": AUTH with user and password when user is set; "xoauth2"
    oauth: OAuthSettings | None = None  # the XOAUTH2 token source (the IMAP one unless given)
    # Seconds before a reply claimed by a sender that died may be sent by another.
    claim_lease: float = 600.0


@dataclass(frozen=True)
class EventSettings:
    id: str
    name: str
    group: str
    acronym: str
    address: str
    address_name: str
    meeting_place: str
    meeting_date: date
    preregistration_deadline: date | None
    deadline: datetime  # timezone-aware, in `timezone`
    timezone: ZoneInfo
    grace: timedelta
    late_policy: str
    template: Path | None
    numbering_prefix: str
    numbering_width: int
    # The event's own tables, parsed once here (intake.config.checks, .screening, .replies).
    checks: Checks = field(default_factory=Checks)  # [event.checks]: intake.judge
    screening: ScreeningConfig = field(default_factory=ScreeningConfig)  # [event.screening]: intake.screen
    replies: RepliesConfig = field(default_factory=default_replies)  # [event.replies]: intake.replies
    max_attachment_mb: int = 25  # the largest file the pre-check page takes (intake.precheck)
    precheck_url: str = ""  # the pre-check page's public address; replies link to it when set
    digest_to: tuple[str, ...] = ()  # the daily digest's recipients (intake.digest); none: no digest
    digest_at: time = time(8, 0)  # when `intake run` sends it, local time in `timezone`


@dataclass(frozen=True)
class Settings:
    config_path: Path | None
    database_url: str
    data_dir: Path
    log_level: str
    poll_interval: int
    outbox_interval: int
    # Seconds: the longest wait between two attempts after a failure (a server or the
    # database away), so the service is back at work at most this long after they are.
    max_backoff: int
    metrics_host: str
    metrics_port: int  # 0: no /healthz and /metrics
    imap: ImapSettings
    smtp: SmtpSettings
    event: EventSettings
    workers: int = 1  # processes that examine mail (intake.examine); 0: in the poller itself
    desk_url: str = ""  # the desk's public address; the daily digest links to each message there


def default_workers() -> int:
    """One worker per core but one: the poller itself keeps the mailbox and the database busy."""
    return max(1, (os.cpu_count() or 1) - 1)


def load_settings(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    event: str | None = None,
    needs: frozenset[str] = SECTIONS,
) -> Settings:
    """Read the TOML file (or the shipped event), apply the environment, validate.

    With several events (`[[events]]`), `event` picks one by id; None, the first.
    `needs`: the servers the caller uses ("imap", "smtp"); the others may be unset."""
    deployment = load_deployment(path, env, needs)
    if event is None:
        return deployment[0]
    for settings in deployment:
        if settings.event.id == event:
            return settings
    known = ", ".join(s.event.id for s in deployment)
    raise ConfigError("--event", f"no event {event!r} in the configuration; its events are: {known}")


# Environment variables about one event, which make no sense across several.
_EVENT_ONLY = (
    "INTAKE_EVENT_ADDRESS",
    "INTAKE_DEADLINE",
    "INTAKE_TIMEZONE",
    "INTAKE_PRECHECK_URL",
    "INTAKE_DIGEST_TO",
    "INTAKE_DIGEST_AT",
)


def config_problems(
    path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> list[ConfigError]:
    """Every missing or wrong setting of the configuration, all at once (for check-config)."""
    problems: list[ConfigError] = []
    try:
        load_deployment(path, env, problems)
    except ConfigError as error:  # the file itself: unreadable, not TOML, not tables
        return [error]
    return problems


def load_deployment(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    needs: frozenset[str] | list[ConfigError] = SECTIONS,
) -> list[Settings]:
    """Every event of the configuration: one `[event]`, or several `[[events]]`, each
    with its own mailbox (an `[events.imap]` table over the shared `[imap]`), template,
    deadline, numbering and reply wording."""
    env = os.environ if env is None else env
    chosen = path or env.get("INTAKE_CONFIG") or None
    if chosen:
        config_path: Path | None = Path(chosen)
        raw = _read_toml(Path(chosen), "--config" if path else "INTAKE_CONFIG")
        base_dir = Path(chosen).resolve().parent
    else:
        config_path = shipped_config_dir() / DEFAULT_EVENT_FILE
        raw = _read_toml(config_path, "config")
        base_dir = config_path.parent
    tables: dict[str, dict[str, Any]] = {}
    for name in ("service", "imap", "smtp", "event"):
        value = raw.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(name, f"must be a table ([{name}])")
        tables[name] = dict(value)
    events = raw.get("events")
    if events is not None and (not isinstance(events, list) or not all(isinstance(e, dict) for e in events)):
        raise ConfigError("events", "must be an array of tables ([[events]])")
    if events and raw.get("event"):
        raise ConfigError("events", "give either one [event] or several [[events]], not both")
    env_names: dict[tuple[str, str], str] = {}
    for var, (table, key) in ENVIRONMENT.items():
        env_names[(table, key)] = var
        file_var = var + "_FILE"
        if events and var in _EVENT_ONLY and env.get(var):
            raise ConfigError(
                f"{table}.{key}",
                "applies to a single event; with [[events]] set it per event in the file",
                var,
            )
        if (table, key) in SECRET_KEYS and env.get(file_var):
            try:
                tables[table][key] = _read_secret_file(env[file_var], f"{table}.{key}", file_var)
            except ConfigError as error:
                if table == "service":
                    raise
                tables[table][key] = error  # a server's: raised when that server's settings are read
        elif env.get(var) not in (None, ""):
            tables[table][key] = env[var]
    collected = needs if isinstance(needs, list) else None
    sections = SECTIONS if isinstance(needs, list) else needs

    def read(merged: dict[str, dict[str, Any]]) -> Settings:
        reader = _Reader(merged, env_names, base_dir, config_path)
        reader.problems = collected
        return reader.settings(sections)

    if not events:
        return [read(tables)]
    deployment = []
    for index, entry in enumerate(events):
        event_table = dict(entry)
        per_event = dict(tables)
        for name in ("imap", "smtp"):
            override = event_table.pop(name, {})
            if not isinstance(override, dict):
                raise ConfigError(f"events[{index}].{name}", "must be a table")
            per_event[name] = {**tables[name], **override}
        per_event["event"] = event_table
        deployment.append(read(per_event))
    ids = [s.event.id for s in deployment if s.event]  # (collecting: a broken event has no id)
    if len(set(ids)) != len(ids):
        raise ConfigError("events", f"two events share an id: {', '.join(ids)}")
    return deployment


def _read_toml(path: Path, setting: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(setting, f"no such file: {path}") from None
    except PermissionError:
        raise ConfigError(setting, f"cannot read {path}: permission denied") from None
    except OSError as exc:
        raise ConfigError(setting, f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(setting, f"{path} is not valid TOML: {exc}") from None


def _read_secret_file(filename: str, setting: str, env: str | None) -> str:
    try:
        return Path(filename).read_text(encoding="utf-8").strip("\r\n")
    except FileNotFoundError:
        raise ConfigError(setting, f"password file {filename} does not exist", env) from None
    except PermissionError:
        raise ConfigError(setting, f"password file {filename} is not readable", env) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(setting, f"password file {filename} cannot be read ({exc})", env) from None


_TOKEN_SOURCES = "%s.token_command, token_file, or oauth_tenant + oauth_client_id + oauth_client_secret"


class _Reader:
    """Turns the merged tables into typed settings, naming each bad setting."""

    def __init__(
        self,
        tables: dict[str, dict[str, Any]],
        env_names: dict[tuple[str, str], str],
        base_dir: Path,
        config_path: Path | None,
    ) -> None:
        self.tables = tables
        self.env_names = env_names
        self.base_dir = base_dir
        self.config_path = config_path
        # None: the first problem raises. A list: every problem is added to it, and the
        # setting reads as a stand-in value so that the others can be read too.
        self.problems: list[ConfigError] | None = None

    def _error(self, table: str, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{table}.{key}", problem, self.env_names.get((table, key)))

    def _fail(self, table: str, key: str, problem: str, stand_in: Any) -> Any:
        error = self._error(table, key, problem)
        if self.problems is None:
            raise error
        self.problems.append(error)
        return stand_in

    def _get(self, table: str, key: str, default: Any = None) -> Any:
        return self.tables[table].get(key, default)

    def text(self, table: str, key: str, default: str | None = None, required: bool = True) -> str:
        value = self._get(table, key, default)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                return str(self._fail(table, key, "missing: this setting is required", "unset"))
            return ""
        if not isinstance(value, str):
            return str(self._fail(table, key, f"must be text, got {type(value).__name__}", "unset"))
        if any(ch in value for ch in "\r\n\x00"):
            return str(self._fail(table, key, "must be a single line", "unset"))
        return value.strip()

    def integer(self, table: str, key: str, default: int, low: int, high: int) -> int:
        value = self._get(table, key, default)
        try:
            if isinstance(value, (bool, float)):
                raise ValueError
            number = int(value)
        except (TypeError, ValueError):
            problem = f"must be a whole number between {low} and {high}, got {value!r}"
            return int(self._fail(table, key, problem, low))
        if not low <= number <= high:
            return int(self._fail(table, key, f"must be between {low} and {high}, got {number}", low))
        return number

    def number(self, table: str, key: str, default: float, low: float, high: float) -> float:
        value = self._get(table, key, default)
        try:
            if isinstance(value, bool):
                raise ValueError
            result = float(value)
        except (TypeError, ValueError):
            return float(self._fail(table, key, f"must be a number, got {value!r}", low))
        if not low <= result <= high:
            return float(self._fail(table, key, f"must be between {low} and {high}, got {result}", low))
        return result

    def boolean(self, table: str, key: str, default: bool) -> bool:
        value = self._get(table, key, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            return False
        return bool(self._fail(table, key, f"must be true or false, got {value!r}", default))

    def choice(self, table: str, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = str(self._get(table, key, default)).strip().lower()
        if value not in choices:
            problem = f"unknown value {value!r}; use one of: {', '.join(choices)}"
            return str(self._fail(table, key, problem, default))
        return value

    def path(self, table: str, key: str, default: str | None = None, must_exist: bool = False) -> Path | None:
        value = self._get(table, key, default)
        if value in (None, ""):
            return None
        if not isinstance(value, str):
            return self._fail(table, key, "must be a file path", None)  # type: ignore[no-any-return]
        result = Path(value).expanduser()
        if not result.is_absolute() and table != "service":
            result = self.base_dir / result
        if must_exist and not result.is_file():
            return self._fail(table, key, f"file {result} does not exist", None)  # type: ignore[no-any-return]
        if must_exist and not os.access(result, os.R_OK):
            return self._fail(table, key, f"file {result} is not readable", None)  # type: ignore[no-any-return]
        return result

    def secret(self, table: str, key: str, required: bool) -> Secret | None:
        value = self._get(table, key)
        file_value = self._get(table, key + "_file")
        if (value is None or value == "") and file_value:
            value = _read_secret_file(str(self.path(table, key + "_file")), f"{table}.{key}_file", None)
        if value is None or value == "":
            if required:
                return Secret(self._fail(table, key, "missing: this setting is required", ""))
            return None
        if isinstance(value, Secret):
            return value
        if isinstance(value, ConfigError):  # its file could not be read (load_deployment)
            if self.problems is None:
                raise value
            self.problems.append(value)
            return Secret("")
        if not isinstance(value, str):
            return Secret(self._fail(table, key, "must be text", ""))
        return Secret(value)

    def _section(self, name: str, needs: frozenset[str], build: Callable[[], _T]) -> _T:
        """A server's settings. One the command does not need is read all the same, but when
        it is missing or wrong it stands as `Unconfigured`, which raises its first problem
        only when used."""
        if name in needs and self.problems is None:
            return build()
        outer, self.problems = self.problems, []
        try:
            value = build()
        except ConfigError as error:
            self.problems.append(error)
        found, self.problems = self.problems, outer
        if not found:
            return value
        if outer is not None:
            outer.extend(found)
        return cast(_T, Unconfigured(name, found[0]))

    def settings(self, needs: frozenset[str] = SECTIONS) -> Settings:
        data_dir = Path(self.text("service", "data_dir", "var"))
        database_url = self.text("service", "database_url", f"sqlite:///{data_dir / 'intake.db'}")
        if "://" not in database_url:
            problem = "must be a URL such as sqlite:///var/intake.db"
            database_url = self._fail(
                "service", "database_url", problem, f"sqlite:///{data_dir / 'intake.db'}"
            )
        return Settings(
            config_path=self.config_path,
            database_url=database_url,
            data_dir=data_dir,
            log_level=self.choice("service", "log_level", "info", ("debug", "info", "warning", "error")),
            poll_interval=self.integer("service", "poll_interval", 60, 1, 86400),
            outbox_interval=self.integer("service", "outbox_interval", 30, 1, 86400),
            max_backoff=self.integer("service", "max_backoff", 300, 1, 86400),
            metrics_host=self.text("service", "metrics_host", "127.0.0.1"),
            metrics_port=self.integer("service", "metrics_port", 0, 0, 65535),
            workers=self.integer("service", "workers", default_workers(), 0, 256),
            desk_url=self._url("service", "desk_url"),
            imap=(imap := self._section("imap", needs, self.imap)),
            smtp=self._section("smtp", needs, lambda: self.smtp(imap)),
            event=self._section("event", frozenset({"event"}), self.event),
        )

    def imap(self) -> ImapSettings:
        tls = self.choice("imap", "tls", "ssl", TLS_MODES)
        auth = self.choice("imap", "auth", "login", AUTH_MODES)
        oauth = self.oauth("imap")
        if auth == "xoauth2" and oauth is None:
            raise self._error("imap", "auth", f"xoauth2 needs a token source: {_TOKEN_SOURCES % 'imap'}")
        return ImapSettings(
            host=self.text("imap", "host"),
            port=self.integer("imap", "port", 993 if tls == "ssl" else 143, 1, 65535),
            user=self.text("imap", "user"),
            password=self.secret("imap", "password", required=auth == "login") or Secret(""),
            tls=tls,
            ca_file=self.path("imap", "ca_file", must_exist=True),
            folder=self.text("imap", "folder", "INBOX"),
            auth=auth,
            connect_timeout=self.number("imap", "connect_timeout", 15, 0.1, 600),
            read_timeout=self.number("imap", "read_timeout", 120, 0.1, 3600),
            batch_messages=self.integer("imap", "batch_messages", 100, 1, 10000),
            batch_bytes=self.integer("imap", "batch_bytes", 50 * 2**20, 2**16, 2**31),
            max_message_bytes=self.integer("imap", "max_message_bytes", 40 * 2**20, 2**12, 2**31),
            file_messages=self.boolean("imap", "file_messages", True),
            filing_root=self.text("imap", "filing_root", "Intake"),
            oauth=oauth,
            sent_folder=self.text("imap", "sent_folder", "Sent", required=False),
            idle=self.boolean("imap", "idle", False),
        )

    def oauth(self, table: str) -> OAuthSettings | None:
        """The token source given in this table, or None; one source at most."""
        command = self.text(table, "token_command", required=False) or None
        token_file = self.path(table, "token_file")
        tenant = self.text(table, "oauth_tenant", required=False) or None
        client_id = self.text(table, "oauth_client_id", required=False) or None
        secret = self.secret(table, "oauth_client_secret", required=False)
        sources = {
            "token_command": command,
            "token_file": token_file,
            "oauth_client_id": tenant or client_id or secret,
        }
        given = [key for key, value in sources.items() if value]
        if len(given) > 1:
            raise self._error(table, given[1], f"give one token source, not both {given[0]} and {given[1]}")
        if not given:
            return None
        if given == ["oauth_client_id"]:
            for key, value in (
                ("oauth_tenant", tenant),
                ("oauth_client_id", client_id),
                ("oauth_client_secret", secret),
            ):
                if not value:
                    raise self._error(table, key, "missing: the client-credentials flow needs it")
        authority = self.text(table, "oauth_authority", DEFAULT_OAUTH_AUTHORITY)
        if not authority.startswith("https://") or not urlsplit(authority).hostname:
            raise self._error(table, "oauth_authority", f"must be an https:// URL, got {authority!r}")
        return OAuthSettings(
            token_command=command,
            token_file=token_file,
            tenant=tenant,
            client_id=client_id,
            client_secret=secret,
            authority=authority,
            scope=self.text(table, "oauth_scope", DEFAULT_OAUTH_SCOPE),
        )

    def smtp(self, imap: ImapSettings | None = None) -> SmtpSettings:
        tls = self.choice("smtp", "tls", "starttls", TLS_MODES)
        auth = self.choice("smtp", "auth", "login", AUTH_MODES)
        user = self.text("smtp", "user", required=False) or None
        oauth = self.oauth("smtp")
        if auth == "xoauth2":
            # Same mailbox, same app registration: the IMAP token serves SMTP too.
            oauth = oauth or (imap.oauth if imap else None)
            if oauth is None:
                sources = _TOKEN_SOURCES % "smtp"
                raise self._error(
                    "smtp", "auth", f"xoauth2 needs a token source here or in [imap]: {sources}"
                )
            user = user or (imap.user if imap else None)
        return SmtpSettings(
            host=self.text("smtp", "host"),
            port=self.integer("smtp", "port", {"ssl": 465, "starttls": 587, "none": 25}[tls], 1, 65535),
            user=user,
            password=self.secret("smtp", "password", required=user is not None and auth == "login"),
            tls=tls,
            ca_file=self.path("smtp", "ca_file", must_exist=True),
            timeout=self.number("smtp", "timeout", 60, 0.1, 3600),
            claim_lease=self.number("smtp", "claim_lease", 600, 1, 86400),
            auth=auth,
            oauth=oauth,
        )

    def event(self) -> EventSettings:
        tz_name = self.text("event", "timezone", "Europe/Zurich")
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            tz = self._fail("event", "timezone", f"unknown IANA time zone {tz_name!r}", ZoneInfo("UTC"))
        deadline_raw = self._get("event", "deadline")
        if deadline_raw is None or deadline_raw == "":
            deadline_raw = self._fail("event", "deadline", "missing: this setting is required", _NO_DATE)
        try:
            deadline = (
                deadline_raw
                if isinstance(deadline_raw, datetime)
                else datetime.fromisoformat(str(deadline_raw))
            )
        except ValueError:
            problem = f"must be a local date-time like 2026-04-30T23:59:59, got {deadline_raw!r}"
            deadline = self._fail("event", "deadline", problem, _NO_DATE)
        if deadline.tzinfo is not None:
            problem = "give the local time without an offset; the zone is event.timezone"
            deadline = self._fail("event", "deadline", problem, _NO_DATE)
        prefix = self.text("event", "numbering_prefix", None)
        return EventSettings(
            id=self.text("event", "id"),
            name=self.text("event", "name"),
            group=self.text("event", "group"),
            acronym=self.text("event", "acronym"),
            address=self._address(self.text("event", "address")),
            address_name=self.text("event", "address_name", "", required=False),
            meeting_place=self.text("event", "meeting_place"),
            meeting_date=self._date("meeting_date", required=True),  # type: ignore[arg-type]
            preregistration_deadline=self._date("preregistration_deadline", required=False),
            deadline=deadline.replace(tzinfo=tz),
            timezone=tz,
            grace=timedelta(minutes=self.integer("event", "grace_minutes", 0, 0, 60 * 24 * 30)),
            late_policy=self.choice("event", "late_policy", "hold", LATE_POLICIES),
            template=self.path("event", "template", must_exist=True),
            numbering_prefix=prefix,
            numbering_width=self.integer("event", "numbering_width", 3, 1, 9),
            checks=self._parsed(lambda: parse_checks(self._table("checks")), Checks),
            screening=self._parsed(lambda: parse_screening(self._table("screening")), ScreeningConfig),
            replies=self._parsed(
                lambda: parse_replies(self._table("replies"), self.base_dir), default_replies
            ),
            max_attachment_mb=self.integer("event", "max_attachment_mb", 25, 1, 2048),
            precheck_url=self._url("event", "precheck_url"),
            digest_to=self._addresses("event", "digest_to"),
            digest_at=self._clock("event", "digest_at", "08:00"),
        )

    def _table(self, key: str) -> dict[str, Any]:
        value = self._get("event", key, {})
        if not isinstance(value, dict):
            return dict(self._fail("event", key, f"must be a table ([event.{key}])", {}))
        return dict(value)

    def _url(self, table: str, key: str) -> str:
        value = self.text(table, key, "", required=False)
        if value and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname):
            problem = f"must be an http:// or https:// address, got {value!r}"
            return str(self._fail(table, key, problem, ""))
        return value

    def _addresses(self, table: str, key: str) -> tuple[str, ...]:
        """An address, a list of them, or (from the environment) several separated by commas."""
        value = self._get(table, key, [])
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            return tuple(self._fail(table, key, "must be an address or a list of addresses", ()))
        for address in value:
            if deliverable_address(address.strip()) is None:
                return tuple(self._fail(table, key, f"not a deliverable address: {address!r}", ()))
        return tuple(dict.fromkeys(a.strip().lower() for a in value))

    def _clock(self, table: str, key: str, default: str) -> time:
        """A local time of day, "HH:MM" or "HH:MM:SS" (24-hour)."""
        value = self._get(table, key, default)
        if isinstance(value, time):  # TOML's own local time: digest_at = 08:00:00
            return value.replace(microsecond=0)
        parts = str(value).strip().split(":")
        digits = len(parts) in (2, 3) and all(p.isdigit() and len(p) == 2 for p in parts[1:])
        if digits and parts[0].isdigit() and int(parts[0]) < 24 and all(int(p) < 60 for p in parts[1:]):
            hour, minute, second = (int(p) for p in (*parts, "00")[:3])
            return time(hour, minute, second)
        problem = f'must be a time of day like "08:00" or "08:00:30", got {value!r}'
        return time.fromisoformat(str(self._fail(table, key, problem, default)))

    def _parsed(self, parse: Callable[[], _T], stand_in: Callable[[], _T]) -> _T:
        """An event table's own parse, whose first problem is collected like the others."""
        try:
            return parse()
        except ConfigError as error:
            if self.problems is None:
                raise
            self.problems.append(error)
            return stand_in()

    def _address(self, value: str) -> str:
        local, at, domain = value.partition("@")
        if not at or not local or "." not in domain or any(c.isspace() for c in value):
            return str(self._fail("event", "address", f"not an e-mail address: {value!r}", "unset@invalid"))
        return value.lower()

    def _date(self, key: str, required: bool) -> date | None:
        value = self._get("event", key)
        if value in (None, ""):
            if required:
                return self._fail("event", key, "missing: this setting is required", _NO_DATE.date())  # type: ignore[no-any-return]
            return None
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            problem = f"must be a date like 2026-05-13, got {value!r}"
            return self._fail("event", key, problem, _NO_DATE.date())  # type: ignore[no-any-return]
