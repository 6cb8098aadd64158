"""Reading header text as a person would: case, spacing, full-width forms, dashes.

Contributors type labels as "SOURCE :", "Title\u00a0:", "Ｃｏｎｔａｃｔ：" or "E‑mail"; a
reader sees the same word in each. `fold` gives the comparable form of a text,
`fold_with_map` also says where each folded character came from, so that a match
found in folded text can be quoted from the original, and `fold_chars` is `fold`
before white space is collapsed, enough to rule a search out cheaply.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Characters that change nothing a reader sees.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad")
# Every dash and minus a keyboard or Word's autocorrect produces.
_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d")
_QUOTES = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'}
# "Re:" and its forms in the mail programs of the world's languages, repeated or numbered.
REPLY_PREFIX = re.compile(
    r"^(?:\s*(?:re|aw|antw|sv|vs|odp|rif|回复|回覆|答复)\s*(?:\[\d+\])?\s*[:：])+\s*", re.IGNORECASE
)


@functools.lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    if ch in _INVISIBLE:
        return ""
    if ch in _DASHES:
        return "-"
    if ch in _QUOTES:
        return _QUOTES[ch]
    out = unicodedata.normalize("NFKC", ch).casefold()
    return " " if out.isspace() else out


def fold_with_map(text: str) -> tuple[str, list[int]]:
    """The folded text, and for each of its characters the index it came from in `text`.

    Runs of white space become one space; leading and trailing space is dropped.
    """
    if text.isascii():
        return _fold_ascii_with_map(text)
    return _fold_chars_with_map(text)


def _fold_chars_with_map(text: str) -> tuple[str, list[int]]:
    """`fold_with_map` a character at a time: any text (the ASCII shortcut is held to it)."""
    out: list[str] = []
    where: list[int] = []
    for index, ch in enumerate(text):
        for piece in _fold_char(ch):
            if piece == " " and (not out or out[-1] == " "):
                continue
            out.append(piece)
            where.append(index)
    if out and out[-1] == " ":
        out.pop()
        where.pop()
    return "".join(out), where


# A run of characters that are not white space (to str.split and to re alike).
_ASCII_WORD = re.compile(r"\S+")


def _fold_ascii_with_map(text: str) -> tuple[str, list[int]]:
    """`fold_with_map` of ASCII text, a word at a time rather than a character at a time.

    In ASCII only case and white space fold: each word maps to its own characters, and
    the space that joins two words to the first white-space character between them.
    """
    where: list[int] = []
    after: int | None = None  # the end of the previous word
    for match in _ASCII_WORD.finditer(text):
        start, end = match.span()
        if after is not None:
            where.append(after)
        where.extend(range(start, end))
        after = end
    return " ".join(text.lower().split()), where


_TRANSLATE: dict[int, str | None] = {
    **{ord(ch): None for ch in _INVISIBLE},
    **{ord(ch): "-" for ch in _DASHES},
    **{ord(ch): out for ch, out in _QUOTES.items()},
}


def fold(text: str) -> str:
    """The form in which two texts a reader would call the same compare equal.

    The same result as `fold_with_map`, computed on the whole string at once: this
    runs on every paragraph of a document, the character-by-character form only on
    the few where something was found.
    """
    return " ".join(fold_chars(text).split())


def fold_chars(text: str) -> str:
    """`fold` before its white space is collapsed: `fold(text)` is `" ".join(fold_chars(text).split())`.

    Cheaper than `fold` (no splitting into words), for ruling a search out: a word of
    a folded sample lies within one word of `fold(text)`, so within `fold_chars(text)`;
    a word missing here is missing there.
    """
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKC", text.translate(_TRANSLATE)).casefold()


_DROP_INVISIBLE = {ord(ch): None for ch in _INVISIBLE}


def display(text: str) -> str:
    """Text as shown to a contributor: compatibility forms unified, one line, spaces collapsed."""
    if text.isascii():  # the common case: nothing to normalise or drop
        return " ".join(text.split())
    return " ".join(unicodedata.normalize("NFKC", text).translate(_DROP_INVISIBLE).split())


def display_head(text: str, size: int) -> str:
    """`display` of a start of `text`: its first `size` characters, or a few more, up to a space.

    `display(text)` begins with it and goes on, if at all, with a space and more: NFKC
    joins nothing across an ASCII space, the rest works a character or a word at a time.
    Enough to tell that a paragraph is too long to be a label without displaying it all.
    """
    cut = text.find(" ", size)
    return display(text if cut < 0 else text[:cut])


_NOT_WORD = re.compile(r"[^\w]|_")


def label_key(text: str) -> str:
    """The comparable key of a label: "Question(s):" -> "questions", "E-mail" -> "email"."""
    return _NOT_WORD.sub("", fold(text).rstrip(": "))


def same_label(a: str, b: str) -> bool:
    """Two label keys name the same field ("contact" and "contacts" do)."""
    return bool(a) and (a == b or a == b + "s" or b == a + "s")


def word_count(text: str) -> int:
    return len(re.findall(r"\w+(?:['’\-]\w+)*", text))


def shorten(text: str, limit: int = 80) -> str:
    """One line of at most `limit` characters, for quoting in a finding."""
    text = display(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# "Label: value" on one line; the colon may be full-width (NFKC makes it ASCII).
_INLINE = re.compile(r"^\s*(?P<label>[^\W\d_][^:\n]{0,40}?)\s*:\s*(?P<value>.*)$", re.DOTALL)
_INLINE_LABEL_MAX = 41  # the longest label _INLINE takes: a letter and 40 more


def split_inline_label(text: str) -> tuple[str, str] | None:
    """("Source", "ETRI") for "Source: ETRI" (any colon form), else None.

    Most paragraphs are prose, read for labels all the same: a label sits before the
    first colon with nothing but white space around it, which rules prose out without
    the pattern's backtracking.
    """
    normal = unicodedata.normalize("NFKC", text).replace("\u00a0", " ")
    colon = normal.find(":")
    if colon < 0 or len(normal[:colon].strip()) > _INLINE_LABEL_MAX:
        return None
    match = _INLINE.match(normal)
    if not match:
        return None
    return match.group("label").strip(), match.group("value").strip()
