"""What text a member may type: the one check every form field, API field and import goes through.

Text is normalised to NFC, so one word is stored one way and compares equal to itself. Beyond
that, characters that print nothing are refused, because nobody types them on purpose and each
has a known abuse:

- control characters (Unicode category Cc: NUL, CR, LF, ESC...) and the line and paragraph
  separators (Zl, Zp) break a line where a single line is expected: a title with a line break
  becomes a second header line in the e-mail that carries it;
- format characters (Cf): bidirectional overrides, embeddings, isolates and marks (U+202E makes
  ``txt.exe`` read as ``exe.txt``) and zero-width characters, which make two different strings
  look identical;
- lone surrogates (Cs), which JSON can carry but no database encoding can store.

A multi-line field (a description, a note) also takes line breaks and tabs; CR LF and CR become
LF. Zero-width characters there are removed rather than refused, except the zero-width joiner
and non-joiner, which some scripts and emoji sequences need; bidirectional controls and the
other control characters are refused as in a single line.
"""

import re
import unicodedata

from marketplace.errors import ValidationError

REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_BREAKING = frozenset({"Cc", "Zl", "Zp"})

# The bidirectional formatting characters: embeddings and overrides, isolates, and the marks.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")

# Joiners that shape Arabic, Indic and Persian words and emoji sequences; kept in multi-line text.
JOINERS = frozenset("\u200c\u200d")

_LINE_BREAKS = re.compile(r"\r\n|\r|\u2028|\u2029")


def _refused(char: str) -> bool:
    return unicodedata.category(char) in REFUSED_CATEGORIES


def single_line(value: str | None, field: str) -> str:
    """``value`` in NFC; a ``ValidationError`` naming ``field`` if it holds a control, format or
    line-separating character."""
    text = unicodedata.normalize("NFC", value or "")
    if any(_refused(char) for char in text):
        raise ValidationError(
            f"{field} must be one line of visible text: it cannot contain line breaks, "
            "control characters, direction overrides or invisible characters.",
            code="invalid_text",
        )
    return text


def multi_line(value: str | None, field: str) -> str:
    """``value`` in NFC with LF line breaks and without zero-width characters; a
    ``ValidationError`` naming ``field`` if it holds another control or a direction override."""
    text = _LINE_BREAKS.sub("\n", unicodedata.normalize("NFC", value or ""))
    kept = []
    for char in text:
        if char in "\n\t" or char in JOINERS or not _refused(char):
            kept.append(char)
        elif unicodedata.category(char) == "Cf" and char not in BIDI_CONTROLS:
            continue  # zero-width space, BOM, soft hyphen...: invisible, dropped harmlessly
        else:
            raise ValidationError(
                f"{field} cannot contain control characters or direction overrides (line breaks and tabs are fine).",
                code="invalid_text",
            )
    return "".join(kept)


def flattened(value: str | None) -> str:
    """``value`` in NFC as one line, for text that is repaired rather than refused: an imported
    contact's fields, or an e-mail header built from text stored before these rules. Line breaks
    and other control characters become spaces, format characters are dropped, and runs of
    white space become one space."""
    pieces = []
    for char in unicodedata.normalize("NFC", value or ""):
        category = unicodedata.category(char)
        if category in _BREAKING:
            pieces.append(" ")
        elif category not in REFUSED_CATEGORIES:
            pieces.append(char)
    return " ".join("".join(pieces).split())
