"""Configuration: one TOML file, overridden by environment variables, parsed once at start.

`load_settings` / `load_deployment` (intake.config.loader) read the file and the
environment into typed, frozen settings; the event's own tables are parsed in the same
step, one module each: `[event.checks]` (intake.config.checks), `[event.screening]`
(intake.config.screening) and `[event.replies]` (intake.config.replies). Nothing reads
a raw table after that, so every configuration error surfaces at start, as a
`ConfigError` naming the key, which the CLI prints as one line with exit code 2.
"""

from intake.config.base import ConfigError, Secret, Unconfigured, shipped_config_dir
from intake.config.checks import Checks
from intake.config.loader import (
    AUTH_MODES,
    DEFAULT_EVENT_FILE,
    ENVIRONMENT,
    LATE_POLICIES,
    SECRET_KEYS,
    SECTIONS,
    TLS_MODES,
    EventSettings,
    ImapSettings,
    OAuthSettings,
    Settings,
    SmtpSettings,
    config_problems,
    load_deployment,
    load_settings,
)
from intake.config.replies import RepliesConfig
from intake.config.screening import ScreeningConfig

__all__ = [
    "AUTH_MODES",
    "DEFAULT_EVENT_FILE",
    "ENVIRONMENT",
    "LATE_POLICIES",
    "SECRET_KEYS",
    "SECTIONS",
    "TLS_MODES",
    "Checks",
    "ConfigError",
    "EventSettings",
    "ImapSettings",
    "OAuthSettings",
    "RepliesConfig",
    "ScreeningConfig",
    "Secret",
    "Settings",
    "SmtpSettings",
    "Unconfigured",
    "config_problems",
    "load_deployment",
    "load_settings",
    "shipped_config_dir",
]
