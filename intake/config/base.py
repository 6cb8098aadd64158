"""What every part of the configuration shares: the one-line error, secrets, the shipped files."""

from __future__ import annotations

from pathlib import Path


class ConfigError(Exception):
    """A setting is missing or wrong. `str()` is one line for the operator."""

    def __init__(self, setting: str, problem: str, env: str | None = None) -> None:
        self.setting = setting
        self.problem = problem
        self.env = env
        where = f"{setting} ({env})" if env else setting
        super().__init__(f"{where}: {problem}")


class Unconfigured:
    """Stands for the settings of a server that a command does not use and that are missing or
    wrong (`intake log` needs no IMAP server): reading any of them raises that problem."""

    def __init__(self, section: str, error: ConfigError) -> None:
        self.section = section
        self.error = error

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):  # copy, pickle and friends look for optional dunders
            raise AttributeError(name)
        raise self.error

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"Unconfigured({self.section!r}: {self.error})"


class Secret:
    """A string that never shows itself in logs, reprs or error messages."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def shipped_config_dir() -> Path:
    """Where the shipped config/ lives: inside the wheel, or beside the source tree."""
    here = Path(__file__).resolve().parent.parent  # the intake package
    for candidate in (here / "_shipped" / "config", here.parent / "config"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("config", "the shipped config directory is missing from this installation")
