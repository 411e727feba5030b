"""Reading contact-card files: LinkedIn's ``Connections.csv`` export and vCard (``.vcf``) files.

``parse_file`` takes the uploaded bytes and tells the kind of file by its content, not its name:

- LinkedIn's export: a ``Notes:`` preamble, then the header line (found by its "First Name" and
  "Last Name" columns, in any order, with the extra "Other Emails", "Tags" and "Notes" columns
  the marketplace's own export adds), then one connection a line. Dates read as "14 Mar 2024" or
  ISO, and the apostrophe an export puts before a cell a spreadsheet would run as a formula is
  taken off again.
- vCard 3.0 and 4.0 (and vCard 2.1's quoted-printable lines): one card from ``BEGIN:VCARD`` to
  ``END:VCARD``, with several e-mails (the preferred first), categories as tags and only a
  LinkedIn address kept.

A file that cannot be read (binary, not UTF-8, not a LinkedIn export, truncated, a broken card,
too many rows) raises ``ImportFileError`` with a message naming its line. A file that can be read
gives one ``ParsedRow`` per contact: its cleaned card, or why it is skipped, and warnings for the
fields that were left out.

It is pure: bytes in, rows out, with no database, session or request. So it is tested on sample
files alone, and the page and the API can both hand it an upload.
"""

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import vobject

from marketplace.errors import ValidationError
from marketplace.network.models import CardSource
from marketplace.network.service import CardData, clean_card, clean_email, clean_url

MAX_ROWS = 50_000

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
LINKEDIN_COLUMNS = ["First Name", "Last Name", "URL", "Email Address", "Company", "Position", "Connected On"]
EXTRA_COLUMNS = ["Other Emails", "Tags", "Notes"]
FORMULA_START = tuple("=+-@")
"""What a spreadsheet cell starts with to be run as a formula; exports guard it with an apostrophe."""

_FIELDS = {
    "first name": "first",
    "last name": "last",
    "url": "url",
    "email address": "email",
    "company": "company",
    "position": "position",
    "connected on": "connected_on",
    "other emails": "other_emails",
    "tags": "tags",
    "notes": "notes",
}
_VCARD_PROPERTY = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)?[;:]")


class ImportFileError(ValidationError):
    code = "bad_import_file"


@dataclass
class ParsedRow:
    """One parsed row: its card, or why it is skipped; ``warnings`` say what was left out."""

    line: int
    data: CardData | None
    reason: str = ""
    warnings: list[str] = field(default_factory=list)


def parse_file(raw: bytes) -> tuple[CardSource, list[ParsedRow]]:
    """The file's kind (told by its content, not its name) and its rows."""
    text = _decode(raw)
    if text.lstrip().upper().startswith("BEGIN:VCARD"):
        return CardSource.VCARD, _vcard_rows(text)
    return CardSource.LINKEDIN, _linkedin_rows(text)


def _decode(raw: bytes) -> str:
    if not raw.strip():
        raise ImportFileError("The file is empty.")
    if b"\x00" in raw:
        raise ImportFileError(
            "This is not a CSV or vCard file: it looks binary (a spreadsheet, a PDF or an image?). "
            "Upload LinkedIn's Connections.csv or a .vcf file from your address book."
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ImportFileError(
            f"Line {line} is not UTF-8 text. Save the file as UTF-8 (“CSV UTF-8” in Excel) and try again."
        ) from None


def _tolerant(line: int, data: CardData) -> ParsedRow:
    """A row's card, keeping what is usable: a bad e-mail or address is left out with a warning,
    a row without a name is skipped."""
    warnings: list[str] = []

    def keep(value: str | None, clean: Callable[[str | None], str | None], label: str) -> str | None:
        try:
            return clean(value)
        except ValidationError:
            warnings.append(f"left out the {label} '{(value or '')[:60]}'")
            return None

    data.email = keep(data.email, clean_email, "e-mail")
    data.other_emails = [e for e in (keep(e, clean_email, "e-mail") for e in data.other_emails) if e]
    data.linkedin_url = keep(data.linkedin_url, clean_url, "address")
    if data.email is None and data.other_emails:
        data.email = data.other_emails.pop(0)
    if not " ".join(data.name.split()):
        return ParsedRow(line, None, "no name")
    try:
        return ParsedRow(line, clean_card(data), warnings=warnings)
    except ValidationError as error:
        return ParsedRow(line, None, error.message)


def _parse_date(value: str) -> date | None:
    """LinkedIn's "14 Mar 2024" (English month names whatever the locale) or ISO "2024-03-14"."""
    match = re.fullmatch(r"(\d{1,2}) ([A-Za-z]{3}) (\d{4})", value)
    try:
        if match and match.group(2).title() in MONTHS:
            return date(int(match.group(3)), MONTHS.index(match.group(2).title()) + 1, int(match.group(1)))
        return date.fromisoformat(value)
    except ValueError:
        return None


# LinkedIn's Connections.csv --------------------------------------------------------------------


def _cell(value: str) -> str:
    """Undo the export's guard against spreadsheet formulas ("'=..." back to "=...")."""
    return value[1:] if value[:1] == "'" and value[1:2] in FORMULA_START else value


def _linkedin_rows(text: str) -> list[ParsedRow]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: dict[str, int] | None = None
    header_line = first_line = 0
    first_cells: list[str] = []
    rows: list[ParsedRow] = []
    line = 1
    try:
        for record in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                names = [" ".join(cell.split()).casefold() for cell in record]
                if "first name" in names and "last name" in names:
                    header = {_FIELDS[n]: i for i, n in enumerate(names) if n in _FIELDS}
                    header_line, width = start, len(record)
                elif not first_line:
                    first_line, first_cells = start, record
                continue
            if len(record) != width:
                raise ImportFileError(
                    f"Line {start} has {len(record)} fields where the header (line {header_line}) has {width}: "
                    "the file looks truncated or damaged. Nothing was imported."
                )
            rows.append(_linkedin_row(start, {field: _cell(record[i].strip()) for field, i in header.items()}))
            if len(rows) > MAX_ROWS:
                raise ImportFileError(f"The file has more than {MAX_ROWS:,} contacts; split it and import each part.")
    except csv.Error:
        raise ImportFileError(
            f"Line {line}: the file ends inside a quoted field, so it looks truncated. Nothing was imported."
        ) from None
    if header is None:
        found = ", ".join(cell.strip() for cell in first_cells[:8] if cell.strip())
        raise ImportFileError(
            f"Line {first_line or 1}: this is not LinkedIn's Connections.csv. Its header line must have the "
            f"columns {', '.join(LINKEDIN_COLUMNS)}" + (f"; this file starts with: {found}." if found else ".")
        )
    return rows


def _linkedin_row(line: int, values: dict[str, str]) -> ParsedRow:
    connected = values.get("connected_on", "")
    connected_on = _parse_date(connected) if connected else None
    row = _tolerant(
        line,
        CardData(
            name=f"{values.get('first', '')} {values.get('last', '')}",
            email=values.get("email") or None,
            other_emails=[e.strip() for e in values.get("other_emails", "").split(",") if e.strip()],
            company=values.get("company", ""),
            position=values.get("position", ""),
            tags=values.get("tags", "").split(","),
            notes=values.get("notes", ""),
            linkedin_url=values.get("url") or None,
            connected_on=connected_on,
        ),
    )
    if connected and connected_on is None:
        row.warnings.append(f"left out the date '{connected[:30]}'")
    return row


# vCard -----------------------------------------------------------------------------------------


def _vcard_blocks(text: str) -> list[tuple[int, list[str]]]:
    """The cards of a file as (first line, lines), checked line by line so errors name the line."""
    blocks: list[tuple[int, list[str]]] = []
    lines: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        word = line.strip().upper()
        if not start:
            if not word:
                continue
            if word != "BEGIN:VCARD":
                raise ImportFileError(f"Line {number}: expected BEGIN:VCARD, found '{line.strip()[:40]}'.")
            start, lines = number, [line]
        elif word == "BEGIN:VCARD":
            raise ImportFileError(f"Line {number}: a new card begins before the card of line {start} has ended.")
        elif word == "END:VCARD":
            blocks.append((start, [*lines, line]))
            start = 0
        elif line[:1] in (" ", "\t") or _VCARD_PROPERTY.match(line) or lines[-1].endswith("="):
            # Folded lines go on with a space; vCard 2.1's quoted-printable ones end with "=".
            lines.append(line)
        elif word:
            raise ImportFileError(f"Line {number}: '{line.strip()[:40]}' is not a vCard property.")
        if len(blocks) > MAX_ROWS:
            raise ImportFileError(f"The file has more than {MAX_ROWS:,} cards; split it and import each part.")
    if start:
        raise ImportFileError(
            f"Line {start}: the card that begins here has no END:VCARD, so the file looks truncated. "
            "Nothing was imported."
        )
    return blocks


def _vcard_rows(text: str) -> list[ParsedRow]:
    rows = []
    for start, lines in _vcard_blocks(text):
        try:
            card = vobject.readOne("\r\n".join(lines))
            rows.append(_tolerant(start, _vcard_data(card)))
        except (vobject.base.VObjectError, ValueError, AttributeError) as error:
            message = getattr(error, "msg", None) or str(error)
            raise ImportFileError(f"Line {start}: the card that begins here cannot be read ({message}).") from None
    return rows


def _values(card: vobject.base.Component, name: str) -> list:
    return [prop.value for prop in card.contents.get(name, [])]


def _flat(value: str | list[str]) -> str:
    return " ".join(value) if isinstance(value, list) else value


def _preferred(prop: vobject.base.ContentLine) -> bool:
    """Whether a property is marked preferred: ``TYPE=pref`` (vCard 3) or ``PREF=1`` (vCard 4)."""
    params = {k.upper(): [str(v).lower() for v in vs] for k, vs in prop.params.items()}
    return "pref" in params.get("TYPE", []) or "PREF" in params


def _vcard_data(card: vobject.base.Component) -> CardData:
    name = next(iter(_values(card, "fn")), "")
    if not name.strip() and "n" in card.contents:
        parts = card.n.value
        name = " ".join(_flat(p) for p in (parts.prefix, parts.given, parts.additional, parts.family))
    emails = [p.value.strip() for p in sorted(card.contents.get("email", []), key=lambda p: not _preferred(p))]
    organisation: str | list[str] = next(iter(_values(card, "org")), [])
    urls = [u for u in _values(card, "url") if "linkedin.com" in u.lower()]
    connected = next(iter(_values(card, "x-connected-on")), "")
    return CardData(
        name=name,
        email=emails[0] if emails else None,
        other_emails=emails[1:],
        company=", ".join(p for p in (organisation if isinstance(organisation, list) else [organisation]) if p),
        position=next(iter(_values(card, "title")), ""),
        tags=[tag for value in _values(card, "categories") for tag in value],
        notes="\n".join(_values(card, "note")),
        linkedin_url=urls[0] if urls else None,
        connected_on=_parse_date(connected.strip()) if connected else None,
    )
