"""Reading card files without a database: LinkedIn's export with its preamble, vCards of both
versions, rows skipped or files refused naming their line, and files that are neither."""

from datetime import date
from pathlib import Path

import pytest

from marketplace.network.card_files import ImportFileError, ParsedRow, parse_file
from marketplace.network.models import CardSource

DATA = Path(__file__).parent / "data"
LINKEDIN = (DATA / "linkedin-Connections.csv").read_bytes()
VCARDS = (DATA / "contacts.vcf").read_bytes()
HEADER = "First Name,Last Name,URL,Email Address,Company,Position,Connected On\n"


def lines(rows: list[ParsedRow]) -> list[tuple[int, str, str]]:
    return [(row.line, row.data.name if row.data else "", row.reason) for row in rows]


def test_a_linkedin_export_is_read_past_its_notes_preamble() -> None:
    source, rows = parse_file(LINKEDIN)
    assert source == CardSource.LINKEDIN
    assert lines(rows) == [
        (5, "Ann Lindqvist", ""),
        (6, "Björn Åkesson", ""),
        (7, "Chloé Dubois-Martin", ""),
        (8, "Dev Patel", ""),
        (9, "Ann Lindqvist", ""),  # the duplicate is a row like any other; the preview merges it
        (10, "", "no name"),
    ]
    ann, bjorn, chloe = (row.data for row in rows[:3])
    assert ann is not None and bjorn is not None and chloe is not None
    assert ann.email == "ann.lindqvist@example.com" and ann.connected_on == date(2024, 3, 14)
    assert ann.linkedin_url == "https://www.linkedin.com/in/ann-lindqvist-0a1b2c"
    assert bjorn.email is None and bjorn.position == "Head of Data, Platform"
    assert chloe.company == "Acme, Inc."
    assert all(row.warnings == [] for row in rows)


def test_a_vcard_file_gives_one_row_per_card_at_its_first_line() -> None:
    source, rows = parse_file(VCARDS)
    assert source == CardSource.VCARD
    assert lines(rows) == [(1, "Ngozi Okafor", ""), (11, "José Álvarez", ""), (20, "No Email Person", "")]
    ngozi, jose, nobody = (row.data for row in rows)
    assert ngozi is not None and jose is not None and nobody is not None
    assert (ngozi.email, ngozi.company, ngozi.position) == (
        "ngozi.okafor@example.com",
        "Lagos Fintech Ltd",
        "Payments Engineer",
    )
    assert (jose.email, jose.other_emails) == ("jose.alvarez@example.net", ["jalvarez@example.com"])
    assert jose.tags == ["postgresql", "replication"]
    assert nobody.email is None and nobody.company == "Somewhere"


def test_the_preferred_e_mail_of_a_vcard_comes_first() -> None:
    card = "BEGIN:VCARD\nVERSION:4.0\nFN:Kim Lee\nEMAIL:kim@home.example\nEMAIL;PREF=1:kim@work.example\nEND:VCARD\n"
    _, (row,) = parse_file(card.encode())
    assert row.data is not None
    assert (row.data.email, row.data.other_emails) == ("kim@work.example", ["kim@home.example"])


def test_a_row_with_unusable_fields_keeps_its_line_and_says_what_was_left_out() -> None:
    text = HEADER + "Ann,Berg,,ann@example.com,,,\nZoë,Ng,javascript:alert(1),not-an-address,Acme,,sometime\n"
    _, rows = parse_file(text.encode())
    assert [row.line for row in rows] == [2, 3]
    zoe = rows[1]
    assert zoe.data is not None and zoe.data.name == "Zoë Ng" and zoe.data.company == "Acme"
    assert zoe.data.email is None and zoe.data.linkedin_url is None and zoe.data.connected_on is None
    assert zoe.warnings == [
        "left out the e-mail 'not-an-address'",
        "left out the address 'javascript:alert(1)'",
        "left out the date 'sometime'",
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (HEADER + "Ann,Berg,,ann@example.com,,,\nBo,Ek,,bo@example.com\n", "Line 3 has 4 fields where the header"),
        (HEADER + 'Ann,Berg,,ann@example.com,"Acme,,\n', "Line 2: the file ends inside a quoted field"),
        ("BEGIN:VCARD\nVERSION:3.0\nFN:A\nthis is not a property\nEND:VCARD\n", "Line 4: 'this is not a property'"),
    ],
)
def test_a_malformed_row_refuses_the_file_naming_its_line(raw: str, message: str) -> None:
    with pytest.raises(ImportFileError) as raised:
        parse_file(raw.encode())
    assert message in raised.value.message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"Name,Email\nAnn,ann@example.com\n", "Line 1: this is not LinkedIn's Connections.csv"),
        (b"Hello,\n\nthese are my contacts.\n", "this file starts with: Hello."),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\x00", "it looks binary"),
        (b"PK\x03\x04\x14\x00\x06\x00", "it looks binary"),
        (b"Name\nZo\xeb\n", "Line 2 is not UTF-8 text"),
        (b"  \n", "The file is empty."),
    ],
)
def test_a_file_that_is_neither_csv_nor_vcard_is_refused(raw: bytes, message: str) -> None:
    with pytest.raises(ImportFileError) as raised:
        parse_file(raw)
    assert message in raised.value.message
    assert raised.value.code == "bad_import_file"
