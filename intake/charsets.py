"""Text in mail, read as its sender wrote it: charset labels and invisible characters.

Charset labels are read as mail clients and browsers read them, by the WHATWG
Encoding Standard's label table (the `webencodings` package keeps it; no table
of ours): `gb2312` and `gbk` name GBK, whose decoder is GB18030's; `shift_jis`
is Windows' CP932, `ks_c_5601-1987` and `euc-kr` CP949, `iso-8859-1`,
`us-ascii` and `latin1` Windows-1252. Where the standard deliberately names
no decoder (UTF-7, ISO-2022-KR, HZ: a browser must not run them on web pages)
mail still uses them, so Python's codec of that name decodes them.

When the label is unknown, or the bytes are not valid in the labelled
charset, the text is not decoded with replacement characters while a better
reading exists: UTF-8 is tried, then detection (charset-normalizer); only
bytes that nothing reads end as U+FFFD.

`readable` removes what a person cannot see or should not be shown: C0 and
C1 control characters (U+0080-U+009F), bidirectional overrides, zero-width
spaces, soft hyphens and byte-order marks.
"""

from __future__ import annotations

import codecs
import functools
import re
import unicodedata

import charset_normalizer
import webencodings

_UTF7 = frozenset({"utf-7", "utf7", "unicode-1-1-utf-7", "csunicode11utf7", "x-unicode-2-0-utf-7"})
# WHATWG labels that name Windows-1252 although the sender may have meant "plain text":
# bytes that are valid UTF-8 under these labels are read as UTF-8 (a hand-rolled script
# that wrote UTF-8 and declared nothing, or us-ascii).
_ASCII_LABELS = frozenset(
    {"us-ascii", "ascii", "ansi_x3.4-1968", "iso-ir-6", "iso646-us", "us", "ibm367", "cp367", "csascii"}
)
# The WHATWG GBK decoder is the GB18030 decoder; Python's "gbk" codec is narrower.
_PYTHON_NAME = {"gbk": "gb18030", "gb18030": "gb18030"}
# Detection chooses among the charsets mail is written in (the WHATWG standard's legacy
# encodings): offered every codec Python has, it reads KOI8-R Russian as Shift_JIS_2004.
_MAIL_CHARSETS = (
    "utf_8", "cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257",
    "cp1258", "cp874", "koi8_r", "koi8_u", "iso8859_2", "iso8859_5", "iso8859_7", "iso8859_15",
    "gb18030", "big5hkscs", "cp932", "euc_jp", "iso2022_jp", "cp949",
)  # fmt: skip
_DETECT_LIMIT = 64 * 1024  # bytes handed to detection; enough to tell a charset
# Below this many non-ASCII bytes detection is a guess (a short Latin-1 word reads as
# Arabic as well as French), and Windows-1252 is read, as the standard does by default.
_DETECT_FEWEST = 6


def _c1_for_undefined(error: UnicodeError) -> tuple[str, int]:
    """Windows-1252's five undefined bytes decode to the C1 controls of the same
    value, as the WHATWG decoder does (and `readable` removes them)."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return "".join(chr(b) for b in bad), error.end


codecs.register_error("intake-c1", _c1_for_undefined)


@functools.lru_cache(maxsize=256)
def codec_for(label: str | None) -> str | None:
    """The Python codec that decodes text under this charset label, or None when
    the label names no text encoding we know."""
    if not label:
        return None
    name = label.strip().strip("\"'").strip().lower()
    if not name:
        return None
    if name in _UTF7:
        return "utf-7"
    encoding = webencodings.lookup(name)
    if encoding is not None and encoding.name != "replacement":
        return _PYTHON_NAME.get(encoding.name, encoding.codec_info.name)
    try:
        info = codecs.lookup(name)  # replacement labels, and names only Python knows (cp932)
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True):  # base64, rot13, zlib: not charsets
        return None
    return _PYTHON_NAME.get(info.name, info.name)


def _strict(data: bytes, codec: str) -> str | None:
    try:
        if codec == "cp1252":
            return data.decode("cp1252", "intake-c1")
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _detected(data: bytes) -> str | None:
    sample = data[:_DETECT_LIMIT]
    if len(sample) - len(sample.translate(None, bytes(range(0x80, 0x100)))) < _DETECT_FEWEST:
        return None
    try:
        best = charset_normalizer.from_bytes(sample, cp_isolation=list(_MAIL_CHARSETS)).best()
    except Exception:  # detection is a help, never a failure
        return None
    if best is None or best.encoding is None:
        return None
    return _strict(data, _PYTHON_NAME.get(best.encoding, best.encoding))


def decode(data: bytes, label: str | None, *, utf8_first: bool = False) -> str:
    """Text from bytes that declare `label` (None: nothing declared).

    utf8_first: try UTF-8 before a single-byte label (raw 8-bit headers, where
    the message's declared charset is only a hint about the header's bytes).
    """
    codec = codec_for(label)
    tried: list[str] = []
    if codec is None or (codec == "cp1252" and (utf8_first or _is_ascii_label(label))):
        tried.append("utf-8")
    if codec is not None:
        tried.append(codec)
    for name in tried:
        text = _strict(data, name)
        if text is not None:
            return text
    text = _detected(data)
    if text is not None:
        return text
    if codec is None:
        return data.decode("cp1252", "intake-c1")  # every byte means something; nothing replaced
    return data.decode(codec, "replace")


def _is_ascii_label(label: str | None) -> bool:
    return (label or "").strip().strip("\"'").strip().lower() in _ASCII_LABELS


# Characters removed from what a person reads: controls (Cc, which holds C0 and C1),
# format characters (Cf: zero-width space, bidi overrides, soft hyphen, BOM) except the
# zero-width joiner and non-joiner that Persian, Indic scripts and emoji need.
_KEPT_FORMAT = frozenset({"\u200c", "\u200d"})
_SEPARATORS = re.compile("[\u2028\u2029\u0085]")


def readable(value: str) -> str:
    """The text without control and invisible characters, one line, spaces collapsed."""
    value = _SEPARATORS.sub(" ", value)
    kept = []
    for ch in value:
        if ch < " " and ch != "\x00":  # a C0 control between words still separates them
            kept.append(" ")
            continue
        category = unicodedata.category(ch)
        if category == "Cc" or (category == "Cf" and ch not in _KEPT_FORMAT):
            continue
        kept.append(ch)
    return " ".join("".join(kept).split())
