"""Which e-mail addresses are safe to answer, put in a header or give to SMTP."""

from __future__ import annotations

import re

_ATEXT_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def deliverable_address(value: str | None) -> str | None:
    """The address normalised for SMTP and headers, or None if it is unsafe.

    Deliberately stricter than RFC 5321: a dot-atom ASCII local part (no quoted
    strings, which is where header and command injection hide) and a domain of
    LDH labels (an internationalised domain is converted with IDNA). A
    non-ASCII local part would need SMTPUTF8, which we do not rely on.
    """
    if not value:
        return None
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    if len(value) > 254 or any(ord(ch) < 0x21 or ch in '<>()[],;:\\"\x7f' for ch in value):
        return None
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or len(local) > 64 or not _ATEXT_LOCAL.match(local):
        return None
    domain = domain.rstrip(".").lower()
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return None
    return f"{local}@{domain}"
