"""The one check of typed text (``marketplace.text``) and the JSON depth scan: what is refused,
what is repaired, and that what is kept is NFC text without invisible characters."""

import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketplace import text
from marketplace.errors import ValidationError
from marketplace.web.request_limits import json_depth

INVISIBLE = ["\x00", "\r", "\n", "\x1b", "\u202e", "\u2066", "\u200e", "\u200b", "\ufeff", "\u2028", "\u2029", "\ud800"]


@pytest.mark.parametrize("char", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
def test_a_single_line_refuses_controls_separators_and_format_characters_naming_the_field(char):
    with pytest.raises(ValidationError) as refused:
        text.single_line(f"Fix our{char} replication", "The title")
    assert refused.value.status == 422 and refused.value.message.startswith("The title must be one line")


def test_a_single_line_is_kept_in_nfc():
    decomposed = "Bjo\u0308rn"
    assert text.single_line(decomposed, "Name") == "Björn" == unicodedata.normalize("NFC", decomposed)


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\u202e", "\u2067", "\u200f", "\ud800"])
def test_multi_line_text_refuses_other_controls_and_direction_overrides(char):
    with pytest.raises(ValidationError) as refused:
        text.multi_line(f"First line\nsecond{char} line", "The description")
    assert "The description cannot contain" in refused.value.message


def test_multi_line_text_keeps_lines_and_tabs_and_drops_zero_width_characters():
    typed = "First\r\nsecond\rthird\u2028fourth\tcolumn\u200b\ufeff and 👩\u200d💻 with \u200cjoiner"
    assert text.multi_line(typed, "Notes") == "First\nsecond\nthird\nfourth\tcolumn and 👩\u200d💻 with \u200cjoiner"


def test_flattened_repairs_what_a_single_line_refuses():
    typed = "Fix\r\nBcc: evil@example.com \u202eexe.txt\u200b\x00 "
    assert text.flattened(typed) == "Fix Bcc: evil@example.com exe.txt"


@given(st.text())
def test_whatever_is_typed_is_refused_or_kept_as_visible_nfc_text(typed):
    for check in (text.single_line, text.multi_line):
        try:
            kept = check(typed, "Field")
        except ValidationError:
            continue
        assert unicodedata.is_normalized("NFC", kept)
        assert not any(unicodedata.category(c) in {"Cc", "Cs", "Zl", "Zp"} and c not in "\n\t" for c in kept)
        assert not any(c in text.BIDI_CONTROLS for c in kept)
    flat = text.flattened(typed)
    assert not any(unicodedata.category(c) in text.REFUSED_CATEGORIES for c in flat)


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"1", 0),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[[{{{{", "b": "\\"[[["}', 1),
        (b"[" * 100_000, 100_000),
        (json.dumps({"deep": [[[["x"]]]]}).encode(), 5),
    ],
)
def test_json_depth_counts_brackets_outside_strings_without_recursion(body, depth):
    assert json_depth(body) == depth
