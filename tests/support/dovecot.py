"""A private Dovecot IMAP server for tests.

Each instance owns one work directory holding its config, users file, runtime
sockets, logs and Maildir. It listens on 127.0.0.1 only, on a port chosen at the
first start() and kept for the instance's lifetime, so restart() comes back on the
same address with the same mail.

Dovecot never lets mail processes run as uid 0, and its auth process runs as the
`dovecot` user, so when we run as root every directory above the work directory
must be world-traversable (o+x). pytest's tmp_path is not (its base is 0700): use
`Dovecot.make_workdir()`, which creates one under the system temp directory.
"""

from __future__ import annotations

import atexit
import contextlib
import grp
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from imapclient import IMAPClient, SocketTimeout

# Mail files belong to this uid/gid when we run as root. No account is needed;
# it only has to be non-zero (Dovecot refuses uid 0 for mail).
MAIL_UID = 64123
MAIL_GID = 64123

APPEND_BATCH = 50  # messages per MULTIAPPEND command
FETCH_BATCH = 200  # UIDs per FETCH command
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

# The names of Dovecot's dot-lock files (see Dovecot._remove_stale_locks).
DOTLOCK_PATTERNS = ("*.lock", "*.newlock")

_APPENDUID = re.compile(rb"\[APPENDUID \d+ ([0-9:,]+)\]")

# Instances whose master is running; killed at interpreter exit so that a crashed
# test run does not leave servers behind.
_live: set[Dovecot] = set()


class DovecotError(RuntimeError):
    pass


def find_dovecot() -> str | None:
    """Path of the dovecot binary, or None (non-root PATHs often lack /usr/sbin)."""
    found = shutil.which("dovecot")
    if found:
        return found
    for candidate in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class Dovecot:
    host = "127.0.0.1"

    def __init__(
        self,
        workdir: Path,
        user: str = "intake@example.org",
        password: str = "s3cret-pass",
    ) -> None:
        for value in (user, password):
            # Both go verbatim into a colon-separated passwd-file.
            if not value or any(c in value for c in ":\n\r"):
                raise ValueError(f"user and password must not contain ':' or newlines: {value!r}")
        self.workdir = Path(workdir).resolve()
        self.user = user
        self.password = password
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._binary = find_dovecot()
        self.stale_locks_removed = 0  # see _remove_stale_locks

    # ---------------------------------------------------------------- properties

    @property
    def port(self) -> int:
        if self._port is None:
            raise DovecotError("Dovecot has not been started yet: no port chosen")
        return self._port

    @property
    def pid(self) -> int | None:
        """PID of the master process while it runs, else None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def conf_path(self) -> Path:
        return self.workdir / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "dovecot.log"

    @property
    def maildir(self) -> Path:
        return self.workdir / "mail" / self.user / "Maildir"

    @staticmethod
    def make_workdir(prefix: str = "intake-dovecot-") -> Path:
        """A fresh directory that Dovecot's unprivileged processes can reach."""
        path = Path(tempfile.mkdtemp(prefix=prefix))
        path.chmod(0o711)
        return path

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self.running:
            raise DovecotError(f"Dovecot already running (pid {self.pid})")
        if self._binary is None:
            raise DovecotError("dovecot is not installed (apt-get install dovecot-imapd)")
        self._prepare_workdir()
        if self._port is None:
            self._port = _free_port()
        elif not _port_is_free(self._port):
            # Otherwise we might take another server's greeting for ours.
            raise DovecotError(f"port {self._port} was taken while Dovecot was stopped")
        self._write_config()
        self._remove_stale_pidfile()
        self._remove_stale_locks()

        # A session of its own: every Dovecot child inherits it, which lets kill()
        # find exactly this instance's processes (and never another Dovecot's).
        with open(self.workdir / "dovecot.stderr", "ab") as err:
            self._proc = subprocess.Popen(
                [self._binary, "-F", "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                cwd=self.workdir,
                start_new_session=True,
            )
        _live.add(self)
        try:
            self._wait_for_greeting()
        except BaseException:
            self.kill()
            raise

    def stop(self) -> None:
        """Stop by PID: SIGTERM, then SIGKILL after STOP_TIMEOUT. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        # The master normally takes its children down; make sure of it.
        self._kill_session(proc.pid)
        self._proc = None
        _live.discard(self)

    def kill(self) -> None:
        """SIGKILL the master and all of its processes (this instance only)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            # The unreaped master keeps its PID (= our process group and session id)
            # reserved, so this cannot hit an unrelated process group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)
        self._kill_session(proc.pid)
        self._proc = None
        _live.discard(self)

    def restart(self) -> None:
        """Stop (if running) and start again on the same port; mail is kept."""
        self.stop()
        self.start()

    def process_ids(self) -> list[int]:
        """Live (non-zombie) processes of this instance, master included."""
        if self._proc is None:
            return []
        return _session_members(self._proc.pid)

    def __enter__(self) -> Dovecot:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------------- clients

    def client(self, timeout: float = 30.0) -> IMAPClient:
        """A logged-in IMAPClient; log it out (or use it as a context manager)."""
        client = IMAPClient(
            self.host, port=self.port, ssl=False, timeout=SocketTimeout(connect=5.0, read=timeout)
        )
        # IMAPClient sets imaplib's debug level to 5, which makes imaplib format a
        # copy of every literal it reads: 7-10x slower fetches.
        client._imap.debug = 0
        client.login(self.user, self.password)
        return client

    def append_many(self, folder: str, messages: Sequence[tuple[bytes, datetime]]) -> list[int]:
        """Append messages with the given INTERNALDATEs; returns their UIDs in order.

        Uses MULTIAPPEND (RFC 3502), APPEND_BATCH messages per command. The folder
        is created if missing. Datetimes must be timezone-aware.
        """
        for _, when in messages:
            if when.tzinfo is None or when.utcoffset() is None:
                raise ValueError(f"INTERNALDATE must be timezone-aware: {when!r}")
        uids: list[int] = []
        with self.client() as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            for start in range(0, len(messages), APPEND_BATCH):
                batch = messages[start : start + APPEND_BATCH]
                items = [{"msg": raw, "date": when} for raw, when in batch]
                typ, data = c.multiappend(folder, items)
                if typ != "OK":
                    raise DovecotError(f"MULTIAPPEND to {folder!r} failed: {typ} {data!r}")
                uids.extend(_appenduids(data, len(batch)))
        return uids

    def uids(self, folder: str = "INBOX") -> list[int]:
        with self.client() as c:
            c.select_folder(folder, readonly=True)
            return sorted(c.search("ALL"))

    def fetch_all(self, folder: str = "INBOX") -> dict[int, bytes]:
        """UID -> raw message, read with BODY.PEEK[] (flags untouched)."""
        out: dict[int, bytes] = {}
        with self.client() as c:
            c.select_folder(folder, readonly=True)
            uids = sorted(c.search("ALL"))
            # Explicit UID lists only: IMAPClient 4.x breaks on sequence-set strings.
            for start in range(0, len(uids), FETCH_BATCH):
                chunk = uids[start : start + FETCH_BATCH]
                for uid, data in c.fetch(chunk, [b"BODY.PEEK[]"]).items():
                    out[uid] = data[b"BODY[]"]
        missing = set(uids) - out.keys()
        if missing:
            raise DovecotError(f"server returned no data for UIDs {sorted(missing)}")
        return out

    def folders(self) -> list[str]:
        with self.client() as c:
            return sorted(name for _flags, _delim, name in c.list_folders())

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for path in (self.log_path, self.workdir / "dovecot.stderr"):
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def diagnose(self) -> str:
        """What this instance is doing now, for a test that timed out waiting for it: each
        process with its state and the kernel function it sleeps in (and, as root, its kernel
        stack and what it holds open in the Maildir), the Maildir's lock, index and list files,
        and the log's tail."""
        lines = [f"Dovecot on {self.host}:{self.port}, workdir {self.workdir}"]
        pids = self.process_ids()
        for pid in pids:
            proc = Path("/proc") / str(pid)
            with contextlib.suppress(OSError):
                stat = (proc / "stat").read_text()
                state = stat[stat.rindex(")") + 2 :].split()[0]
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                wchan = (proc / "wchan").read_text()
                lines.append(f"  pid {pid} {state} wchan={wchan} {cmd.strip()}")
                with contextlib.suppress(OSError):
                    lines += [f"    {frame}" for frame in (proc / "stack").read_text().splitlines()]
                with contextlib.suppress(OSError):
                    for fd in (proc / "fd").iterdir():
                        with contextlib.suppress(OSError):
                            target = os.readlink(fd)
                            if target.startswith(str(self.workdir / "mail")):
                                lines.append(f"    fd {fd.name} -> {target}")
        with contextlib.suppress(OSError):
            ours = {str(pid) for pid in pids}
            # "N: POSIX ADVISORY WRITE pid dev:inode start end"; a waiter has "->" after "N:".
            locks = [
                line
                for line in Path("/proc/locks").read_text().splitlines()
                if [f for f in line.split() if f != "->"][4:5] in ([pid] for pid in ours)
            ]
            lines.append("  file locks held by these processes (/proc/locks):")
            lines += [f"    {line}" for line in locks]
        mail = self.workdir / "mail"
        interesting = (".lock", "dovecot", "subscriptions", "maildirfolder")
        for path in sorted(mail.rglob("*")) if mail.is_dir() else ():
            if any(part in path.name for part in interesting):
                with contextlib.suppress(OSError):
                    st = path.lstat()
                    age = time.time() - st.st_mtime
                    rel = path.relative_to(mail)
                    lines.append(f"  {rel} {st.st_size} bytes, ino {st.st_ino}, changed {age:.1f}s ago")
        lines.append("  log:")
        lines += [f"    {line}" for line in self.log_tail(40).splitlines()]
        return "\n".join(lines)

    # ------------------------------------------------------------------ internals

    def _prepare_workdir(self) -> None:
        as_root = os.geteuid() == 0
        self.workdir.mkdir(parents=True, exist_ok=True)
        mail = self.workdir / "mail"
        mail.mkdir(exist_ok=True)
        users = self.workdir / "users"
        uid, gid = self._mail_ids()
        home = mail / self.user
        users.write_text(f"{self.user}:{{PLAIN}}{self.password}:{uid}:{gid}::{home}::\n")
        if as_root:
            _check_traversable(self.workdir)
            self.workdir.chmod(0o711)
            os.chown(mail, uid, gid)
            os.chown(users, 0, grp.getgrnam("dovecot").gr_gid)
        users.chmod(0o640)

    def _mail_ids(self) -> tuple[int, int]:
        if os.geteuid() == 0:
            return MAIL_UID, MAIL_GID
        return os.geteuid(), os.getegid()

    def _write_config(self) -> None:
        w = self.workdir
        uid, _gid = self._mail_ids()
        if os.geteuid() == 0:
            privileges = ""
        else:
            # Rootless: every service runs as us and nothing can chroot.
            me = pwd.getpwuid(os.geteuid()).pw_name
            group = grp.getgrgid(os.getegid()).gr_name
            privileges = f"""
default_internal_user = {me}
default_internal_group = {group}
default_login_user = {me}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""
        self.conf_path.write_text(
            f"""# Written by tests/support/dovecot.py; regenerated on every start.
protocols = imap
listen = {self.host}
base_dir = {w}/run
state_dir = {w}/state
log_path = {self.log_path}
instance_name = intake-test-{self.port}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {min(uid, 500)}
mail_location = maildir:~/Maildir:LAYOUT=fs:DIRNAME=.maildir
mail_fsync = never
mail_max_userip_connections = 200
namespace inbox {{
  inbox = yes
  prefix =
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {w}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {w}/users
}}
service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
{privileges}"""
        )

    def _remove_stale_pidfile(self) -> None:
        # Dovecot refuses to start if master.pid names a process that answers
        # kill(pid, 0) - which a zombie does. We only get here when our own master
        # is gone, so any leftover file is stale.
        with contextlib.suppress(FileNotFoundError):
            (self.workdir / "run" / "master.pid").unlink()

    def _remove_stale_locks(self) -> None:
        """Dot-lock files a killed Dovecot left in the Maildir. Dovecot takes over a lock whose
        writer is dead at once only when the file names that writer's PID, and not when it was
        made in the last two seconds (file-dotlock.c, STALE_PID_CHECK_SECS); otherwise it waits
        until the lock has not changed for its stale timeout, and every command on that folder
        (or, for the folder list's index, every LIST) waits with it:
        - `dovecot-uidlist.lock` (and the other `*.lock`), left empty by a kill between creating
          it and writing the PID: two minutes (MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT);
        - `dovecot.index.log.newlock` and `dovecot.list.index.log.newlock`: the transaction log
          being created or rotated is written under this name and renamed when complete, so it
          never holds a PID: three minutes (MAIL_TRANSACTION_LOG_DOTLOCK_CHANGE_TIMEOUT).
        Only this instance uses this Maildir, and it is not running here, so each is stale."""
        mail = self.workdir / "mail"
        if not mail.is_dir():
            return
        for pattern in DOTLOCK_PATTERNS:
            for lock in mail.rglob(pattern):
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
                    self.stale_locks_removed += 1

    def _wait_for_greeting(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise DovecotError(
                    f"dovecot exited with {self._proc.returncode} during start-up:\n" + self.log_tail()
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as s:
                    greeting = s.makefile("rb").readline()
                if greeting.startswith(b"* OK"):
                    return
                last_error = DovecotError(f"unexpected greeting {greeting!r}")
            except OSError as e:
                last_error = e
            time.sleep(0.02)
        raise DovecotError(
            f"no IMAP greeting on {self.host}:{self.port} after {START_TIMEOUT}s "
            f"({last_error}):\n{self.log_tail()}"
        )

    def _kill_session(self, sid: int) -> None:
        """SIGKILL any leftover process of the session and wait until all are gone."""
        deadline = time.monotonic() + STOP_TIMEOUT
        while members := _session_members(sid):
            if time.monotonic() > deadline:
                raise DovecotError(f"dovecot processes {members} survived SIGKILL")
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)


# ---------------------------------------------------------------------- helpers


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_live):
        with contextlib.suppress(Exception):
            server.kill()


def _session_members(sid: int) -> list[int]:
    """Live (non-zombie) Dovecot processes whose session id is `sid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # Fields after the parenthesised command name: state ppid pgrp session
            state, _ppid, _pgrp, session = stat[stat.rindex(")") + 2 :].split()[:4]
            if int(session) != sid or state in ("Z", "X"):
                continue
            # Children exec /usr/lib/dovecot/<service>; their comm is just "imap"...
            if "dovecot" in os.readlink(entry / "exe"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _check_traversable(path: Path) -> None:
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            raise DovecotError(
                f"{parent} (mode {mode & 0o777:o}) is not world-traversable, so Dovecot's "
                f"auth and mail processes cannot reach {path}. "
                "Use Dovecot.make_workdir() instead of pytest's tmp_path."
            )


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Same option Dovecot uses, so TIME_WAIT leftovers don't count as taken.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError:
            return False
        return True


def _free_port() -> int:
    """A free port below the ephemeral range.

    Outgoing connections take their local port from the ephemeral range; choosing
    from below it keeps them from grabbing our port between stop() and restart().
    """
    low, _high = _ephemeral_range()
    candidates = list(range(20000, low)) if low > 21000 else []
    random.shuffle(candidates)
    for port in candidates[:200]:
        if _port_is_free(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _appenduids(data: list[bytes], count: int) -> list[int]:
    """UIDs from the APPENDUID response code (UIDPLUS) of a MULTIAPPEND."""
    text = b" ".join(d for d in data if isinstance(d, bytes))
    match = _APPENDUID.search(text)
    if match is None:
        raise DovecotError(f"no APPENDUID in APPEND response {data!r}")
    uids: list[int] = []
    for part in match.group(1).split(b","):
        first, _, last = part.partition(b":")
        lo, hi = sorted((int(first), int(last or first)))
        uids.extend(range(lo, hi + 1))
    if len(uids) != count:
        raise DovecotError(f"APPENDUID lists {len(uids)} UIDs for {count} messages")
    return uids


__all__ = ["Dovecot", "DovecotError", "find_dovecot", "MAIL_UID", "MAIL_GID"]
