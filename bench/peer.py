"""The peer: django-helpdesk 2.6.1 `manage.py get_email` on the same mailbox as intake.

What a secretariat would bend to this job instead of intake. It is not a
project dependency: it lives in a venv of its own (`bench/.peer/venv`, made on
first use with pip, git-ignored), with a minimal Django project per run
(SQLite, one queue reading the benchmark's IMAP folder over plain IMAP, its
acknowledgements sent to the benchmark's SMTP sink).

How it differs, for reading the figures: it fetches one message at a time by
sequence number, deletes each processed message from the server, keeps no
raw bytes and no de-duplication, and judges nothing. See
../shared/notes/measurements.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER_DIR = HERE / ".peer"
VERSION = "2.6.1"
REQUIREMENTS = (f"django-helpdesk=={VERSION}", "Django>=5.2,<5.3")  # Django 6 needs Python >= 3.12


class PeerError(RuntimeError):
    pass


def ensure_venv(root: Path = PEER_DIR) -> Path:
    """The peer's Python, installing it on first use. Returns the interpreter's path."""
    python = root / "venv" / "bin" / "python"
    stamp = root / "venv" / ".installed"
    wanted = "\n".join(REQUIREMENTS)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    root.mkdir(parents=True, exist_ok=True)
    print(f"bench: installing django-helpdesk {VERSION} into {root / 'venv'}", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise PeerError(f"pip could not install {', '.join(REQUIREMENTS)}:\n{result.stderr[-2000:]}")
    stamp.write_text(wanted)
    return python


@dataclass(frozen=True)
class PeerSite:
    """One Django project with one helpdesk queue on one IMAP folder."""

    python: Path
    directory: Path

    def manage(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), "manage.py", *args],
            cwd=self.directory,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
        )

    def command(self, *args: str) -> list[str]:
        return [str(self.python), "manage.py", *args]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTHON"))}
        env["DJANGO_SETTINGS_MODULE"] = "site_settings"
        return env

    def count(self, model: str) -> int:
        out = self.manage(
            "shell", "-c", f"from helpdesk.models import {model}; print({model}.objects.count())"
        )
        if out.returncode != 0:
            raise PeerError(f"counting {model} failed:\n{out.stderr[-2000:]}")
        return int(out.stdout.strip().splitlines()[-1])


def make_site(
    python: Path, directory: Path, imap: dict[str, object], folder: str, smtp_port: int
) -> PeerSite:
    """A fresh project (empty SQLite database, migrated) whose one queue reads `folder`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "site_settings.py").write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            BASE = Path(__file__).resolve().parent
            SECRET_KEY = "bench-only-not-secret"
            DEBUG = False
            ALLOWED_HOSTS = ["localhost"]
            INSTALLED_APPS = [
                "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
                "django.contrib.sites", "django.contrib.humanize", "rest_framework", "helpdesk",
            ]
            MIDDLEWARE = [
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "django.contrib.messages.middleware.MessageMiddleware",
            ]
            ROOT_URLCONF = "site_urls"
            TEMPLATES = [{{
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {{"context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                ]}},
            }}]
            DATABASES = {{
                "default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": BASE / "helpdesk.db"}},
            }}
            SITE_ID = 1
            HELPDESK_TEAMS_MODE_ENABLED = False  # else it needs pinax-teams
            USE_TZ = True
            STATIC_URL = "/static/"
            MEDIA_ROOT = BASE / "media"
            DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
            EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
            EMAIL_HOST = "127.0.0.1"
            EMAIL_PORT = {smtp_port}
            DEFAULT_FROM_EMAIL = "helpdesk@example.org"
            LOGGING = {{"version": 1, "disable_existing_loggers": False,
                       "root": {{"level": "ERROR", "handlers": []}}}}
            """
        )
    )
    (directory / "site_urls.py").write_text(
        'from django.urls import include, path\nurlpatterns = [path("", include("helpdesk.urls"))]\n'
    )
    (directory / "manage.py").write_text(
        "import sys\nfrom django.core.management import execute_from_command_line\n"
        "execute_from_command_line(sys.argv)\n"
    )
    site = PeerSite(python, directory)
    migrated = site.manage("migrate", "--noinput", timeout=900)
    if migrated.returncode != 0:
        raise PeerError(f"manage.py migrate failed:\n{migrated.stderr[-2000:]}")
    queue = textwrap.dedent(
        f"""
        from helpdesk.models import Queue
        Queue.objects.create(
            title="Bench", slug="bench", email_address="bench@example.org",
            allow_email_submission=True, email_box_type="imap",
            email_box_host={imap["host"]!r}, email_box_port={imap["port"]!r}, email_box_ssl=False,
            email_box_user={imap["user"]!r}, email_box_pass={imap["password"]!r},
            email_box_imap_folder={folder!r}, email_box_interval=1, email_box_last_check=None,
            logging_type="none",
        )
        """
    )
    made = site.manage("shell", "-c", queue)
    if made.returncode != 0:
        raise PeerError(f"creating the helpdesk queue failed:\n{made.stderr[-2000:]}")
    return site
