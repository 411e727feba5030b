"""Contact cards in and out: LinkedIn's ``Connections.csv`` and vCard 3/4 files.

An upload is parsed at once into a preview (``ContactImport.entries``: every row, what will happen
to it and why) and nothing else is written. Confirming applies the preview all or nothing: new
cards are written "staged" (hidden) and one last transaction merges the matches, un-stages the
new cards and marks the import done. Up to ``CHUNK_THRESHOLD`` rows that all happens in the
confirming request; a larger file is confirmed by the worker ``CHUNK`` rows per transaction,
with ``processed`` telling the page how far it got. Cancelling deletes the staged cards.

A file that cannot be read (binary, not UTF-8, not a LinkedIn export, truncated, a broken card)
is refused with a message naming its line, and nothing is stored.
"""

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, timedelta

import vobject
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.db import utcnow
from marketplace.errors import Conflict, NotFound, ValidationError
from marketplace.jobs.service import enqueue
from marketplace.network.models import CardSource, ContactCard, ContactImport, ImportStatus
from marketplace.network.service import (
    CardData,
    card_fields,
    clean_card,
    clean_email,
    clean_url,
    visible_cards,
)

MAX_ROWS = 50_000
CHUNK_THRESHOLD = 2_000
CHUNK = 500
PREVIEW_LIFETIME = timedelta(days=1)
JOB_KIND = "network.import_cards"

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
LINKEDIN_COLUMNS = ["First Name", "Last Name", "URL", "Email Address", "Company", "Position", "Connected On"]
EXTRA_COLUMNS = ["Other Emails", "Tags", "Notes"]
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
_FORMULA_START = tuple("=+-@")
_VCARD_PROPERTY = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)?[;:]")


class ImportFileError(ValidationError):
    code = "bad_import_file"


@dataclass
class _Row:
    """One parsed row: its card, or why it is skipped; ``warnings`` say what was left out."""

    line: int
    data: CardData | None
    reason: str = ""
    warnings: list[str] = field(default_factory=list)


# Reading files ---------------------------------------------------------------------------------


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


def parse_file(raw: bytes) -> tuple[CardSource, list[_Row]]:
    """The file's kind (told by its content, not its name) and its rows."""
    text = _decode(raw)
    if text.lstrip().upper().startswith("BEGIN:VCARD"):
        return CardSource.VCARD, _vcard_rows(text)
    return CardSource.LINKEDIN, _linkedin_rows(text)


def _tolerant(line: int, data: CardData) -> _Row:
    """A row's card, keeping what is usable: a bad e-mail or address is left out with a warning,
    a row without a name is skipped."""
    warnings = []

    def keep(value, clean, label):
        try:
            return clean(value)
        except ValidationError:
            warnings.append(f"left out the {label} '{value[:60]}'")
            return None

    data.email = keep(data.email, clean_email, "e-mail")
    data.other_emails = [e for e in (keep(e, clean_email, "e-mail") for e in data.other_emails) if e]
    data.linkedin_url = keep(data.linkedin_url, clean_url, "address")
    if data.email is None and data.other_emails:
        data.email = data.other_emails.pop(0)
    if not " ".join(data.name.split()):
        return _Row(line, None, "no name")
    try:
        return _Row(line, clean_card(data), warnings=warnings)
    except ValidationError as error:
        return _Row(line, None, error.message)


def _cell(value: str) -> str:
    """Undo the export's guard against spreadsheet formulas ("'=..." back to "=...")."""
    return value[1:] if value[:1] == "'" and value[1:2] in _FORMULA_START else value


def _parse_date(value: str) -> date | None:
    """LinkedIn's "14 Mar 2024" (English month names whatever the locale) or ISO "2024-03-14"."""
    match = re.fullmatch(r"(\d{1,2}) ([A-Za-z]{3}) (\d{4})", value)
    try:
        if match and match.group(2).title() in MONTHS:
            return date(int(match.group(3)), MONTHS.index(match.group(2).title()) + 1, int(match.group(1)))
        return date.fromisoformat(value)
    except ValueError:
        return None


def _linkedin_rows(text: str) -> list[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: dict[str, int] | None = None
    header_line = first_line = 0
    first_cells: list[str] = []
    rows: list[_Row] = []
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


def _linkedin_row(line: int, values: dict[str, str]) -> _Row:
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


def _vcard_blocks(text: str) -> list[tuple[int, list[str]]]:
    """The cards of a file as (first line, lines), checked line by line so errors name the line."""
    blocks, lines, start = [], [], 0
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


def _vcard_rows(text: str) -> list[_Row]:
    rows = []
    for start, lines in _vcard_blocks(text):
        try:
            card = vobject.readOne("\r\n".join(lines))
            rows.append(_tolerant(start, _vcard_data(card)))
        except (vobject.base.VObjectError, ValueError, AttributeError) as error:
            message = getattr(error, "msg", None) or str(error)
            raise ImportFileError(f"Line {start}: the card that begins here cannot be read ({message}).") from None
    return rows


def _values(card, name: str) -> list:
    return [prop.value for prop in card.contents.get(name, [])]


def _flat(value: str | list[str]) -> str:
    return " ".join(value) if isinstance(value, list) else value


def _vcard_data(card) -> CardData:
    def preferred(prop) -> bool:
        params = {k.upper(): [str(v).lower() for v in vs] for k, vs in prop.params.items()}
        return "pref" in params.get("TYPE", []) or "PREF" in params

    name = next(iter(_values(card, "fn")), "")
    if not name.strip() and "n" in card.contents:
        parts = card.n.value
        name = " ".join(_flat(p) for p in (parts.prefix, parts.given, parts.additional, parts.family))
    emails = [p.value.strip() for p in sorted(card.contents.get("email", []), key=lambda p: not preferred(p))]
    organisation = next(iter(_values(card, "org")), [])
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


# The preview -----------------------------------------------------------------------------------


def _card_json(data: CardData) -> dict:
    return {**vars(data), "connected_on": data.connected_on.isoformat() if data.connected_on else None}


def _card_from_json(values: dict) -> CardData:
    connected = values.get("connected_on")
    return CardData(**{**values, "connected_on": date.fromisoformat(connected) if connected else None})


def _url_key(url: str | None) -> str | None:
    return "url:" + url.split("?")[0].rstrip("/").lower() if url else None


def _keys(email_keys: list[str], url: str | None) -> list[str]:
    return [*email_keys, *filter(None, [_url_key(url)])]


def _existing_keys(cards) -> dict[str, object]:
    """Every e-mail and LinkedIn address of the given cards, to the card."""
    found = {}
    for card in cards:
        emails = [card.email_key, *(e.lower() for e in card.other_emails.split(",") if e)]
        for key in _keys([e for e in emails if e], card.linkedin_url):
            found.setdefault(key, card)
    return found


def preview(session: Session, owner: User, filename: str, raw: bytes) -> ContactImport:
    """Parse a file and store what importing it would do; raises ``ImportFileError`` on a bad file."""
    source, rows = parse_file(raw)
    existing = _existing_keys(
        session.execute(
            select(
                ContactCard.id,
                ContactCard.name,
                ContactCard.email_key,
                ContactCard.other_emails,
                ContactCard.linkedin_url,
            ).where(ContactCard.owner_id == owner.id, ContactCard.staged_import_id.is_(None))
        )
    )
    entries: list[dict] = []
    cards: dict[int, CardData] = {}  # entry index -> card, merged with later duplicates in the file
    in_file: dict[str, int] = {}
    for row in rows:
        entry = {"line": row.line, "name": row.data.name if row.data else "", "reason": row.reason}
        if row.data is None:
            entries.append({**entry, "action": "skip", "email": None})
            continue
        entry["email"] = row.data.email
        keys = _keys(row.data.keys, row.data.linkedin_url)
        first = next((in_file[key] for key in keys if key in in_file), None)
        match = next((existing[key] for key in keys if key in existing), None)
        if first is not None:
            changed = cards[first].merge(row.data)
            detail = f"adds {', '.join(changed)}" if changed else "nothing new"
            entry.update(action="merge", reason=f"same person as line {entries[first]['line']} of this file; {detail}")
        elif match is not None:
            cards[len(entries)] = row.data
            entry.update(action="merge", reason=f"already in your cards as {match.name}; empty fields are filled in")
        else:
            cards[len(entries)] = row.data
            entry.update(action="add")
        if row.warnings:
            entry["reason"] = "; ".join(filter(None, [entry["reason"], *row.warnings]))
        for key in keys:
            in_file.setdefault(key, first if first is not None else len(entries))
        entries.append(entry)
    for index, data in cards.items():
        entries[index]["card"] = _card_json(data)
    if not entries:
        raise ImportFileError("The file holds no contacts.")
    imported = ContactImport(
        owner_id=owner.id, filename=(filename or "contacts")[:255], source=source, entries=entries, total=len(entries)
    )
    session.add(imported)
    session.flush()
    return imported


def recent(session: Session, owner: User, limit: int = 5) -> list[ContactImport]:
    return list(
        session.scalars(
            select(ContactImport)
            .where(ContactImport.owner_id == owner.id)
            .order_by(ContactImport.created_at.desc(), ContactImport.id.desc())
            .limit(limit)
        )
    )


def get_import(session: Session, owner: User, import_id: int) -> ContactImport:
    imported = session.get(ContactImport, import_id)
    if imported is None or imported.owner_id != owner.id:
        raise NotFound("No such import.")
    return imported


# Confirming ------------------------------------------------------------------------------------


def confirm(session: Session, owner: User, import_id: int) -> ContactImport:
    """Import the previewed cards: at once when the file is small, else through the worker."""
    imported = get_import(session, owner, import_id)
    result = session.execute(
        update(ContactImport)
        .where(ContactImport.id == imported.id, ContactImport.status == ImportStatus.PREVIEW)
        .values(status=ImportStatus.IMPORTING)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise Conflict(f"This import is already {imported.status.value}.", code="import_state")
    session.refresh(imported)
    if imported.total <= CHUNK_THRESHOLD:
        while not step(session, imported):
            pass
    else:
        enqueue(session, JOB_KIND, f"contact-import:{imported.id}", {"import_id": imported.id})
    return imported


def step(session: Session, imported: ContactImport) -> bool:
    """Stage the next ``CHUNK`` entries' new cards, and finish after the last; True when done.

    The guarded update of ``processed`` makes a chunk count once even if two workers raced.
    """
    session.refresh(imported, ["status", "processed"])
    if imported.status != ImportStatus.IMPORTING:
        return True
    start, end = imported.processed, min(imported.processed + CHUNK, imported.total)
    new = [entry["card"] for entry in imported.entries[start:end] if entry["action"] == "add"]
    if new:
        session.execute(
            insert(ContactCard),
            [
                {
                    "owner_id": imported.owner_id,
                    "source": imported.source,
                    "staged_import_id": imported.id,
                    **card_fields(_card_from_json(card)),
                }
                for card in new
            ],
        )
    result = session.execute(
        update(ContactImport)
        .where(
            ContactImport.id == imported.id,
            ContactImport.status == ImportStatus.IMPORTING,
            ContactImport.processed == start,
        )
        .values(processed=end)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise Conflict("This import was cancelled or is being confirmed elsewhere.", code="import_state")
    session.refresh(imported, ["processed"])
    if end < imported.total:
        return False
    _finish(session, imported)
    return True


def _finish(session: Session, imported: ContactImport) -> None:
    """Merge the matches into the owner's cards and show the new ones, in one transaction."""
    merges = [_card_from_json(e["card"]) for e in imported.entries if e["action"] == "merge" and "card" in e]
    if merges:
        existing = _existing_keys(session.scalars(visible_cards(imported.owner_id)))
        for data in merges:
            card = next((existing[key] for key in _keys(data.keys, data.linkedin_url) if key in existing), None)
            if card is None:  # deleted since the preview: it becomes a new card
                session.add(ContactCard(owner_id=imported.owner_id, source=imported.source, **card_fields(data)))
                continue
            merged = CardData.of(card)
            if merged.merge(data):
                for name, value in card_fields(merged).items():
                    setattr(card, name, value)
    session.execute(
        update(ContactCard)
        .where(ContactCard.staged_import_id == imported.id)
        .values(staged_import_id=None)
        .execution_options(synchronize_session=False)
    )
    imported.status, imported.finished_at = ImportStatus.DONE, utcnow()
    session.flush()


def confirm_in_chunks(session: Session, job) -> dict:
    """The worker's side of a large import: one transaction per chunk, resumable after a crash."""
    imported = session.get(ContactImport, job.payload["import_id"])
    while imported is not None and not step(session, imported):
        session.commit()
    return {"processed": imported.processed if imported else 0}


def cancel(session: Session, owner: User, import_id: int) -> ContactImport:
    """Drop a preview, or stop an import being confirmed: its staged cards are deleted."""
    imported = get_import(session, owner, import_id)
    result = session.execute(
        update(ContactImport)
        .where(
            ContactImport.id == imported.id,
            ContactImport.status.in_([ImportStatus.PREVIEW, ImportStatus.IMPORTING]),
        )
        .values(status=ImportStatus.CANCELLED, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise Conflict(f"This import is already {imported.status.value}.", code="import_state")
    session.execute(delete(ContactCard).where(ContactCard.staged_import_id == imported.id))
    session.refresh(imported)
    return imported


def drop_stale_previews(session: Session) -> int:
    """Previews nobody confirmed within a day are deleted with their parsed rows."""
    result = session.execute(
        delete(ContactImport).where(
            ContactImport.status.in_([ImportStatus.PREVIEW, ImportStatus.CANCELLED]),
            ContactImport.created_at < utcnow() - PREVIEW_LIFETIME,
        )
    )
    return result.rowcount


# Export ----------------------------------------------------------------------------------------


def _guard(value: str) -> str:
    """A cell a spreadsheet would run as a formula gets a leading apostrophe (OWASP CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def export_csv(cards: list[ContactCard]) -> str:
    """LinkedIn's columns (so other tools read it), then other e-mails, tags and notes."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(LINKEDIN_COLUMNS + EXTRA_COLUMNS)
    for card in cards:
        first, _, last = card.name.partition(" ")
        connected = card.connected_on
        writer.writerow(
            _guard(value)
            for value in [
                first,
                last,
                card.linkedin_url or "",
                card.email or "",
                card.company,
                card.position,
                f"{connected.day:02d} {MONTHS[connected.month - 1]} {connected.year}" if connected else "",
                card.other_emails,
                card.tags,
                card.notes,
            ]
        )
    return out.getvalue()


def export_vcard(cards: list[ContactCard]) -> str:
    """vCard 4.0, one card each; the first e-mail is the preferred one."""
    out = []
    for card in cards:
        vcard = vobject.vCard()
        vcard.add("version").value = "4.0"
        vcard.add("fn").value = card.name
        first, _, last = card.name.partition(" ")
        vcard.add("n").value = vobject.vcard.Name(family=last, given=first)
        for position, email in enumerate(filter(None, [card.email, *card.other_email_list])):
            prop = vcard.add("email")
            prop.value = email
            if position == 0:
                prop.params["PREF"] = ["1"]
        if card.company:
            vcard.add("org").value = [card.company]
        if card.position:
            vcard.add("title").value = card.position
        if card.notes:
            vcard.add("note").value = card.notes
        if card.tag_list:
            vcard.add("categories").value = card.tag_list
        if card.linkedin_url:
            vcard.add("url").value = card.linkedin_url
        if card.connected_on:
            vcard.add("x-connected-on").value = card.connected_on.isoformat()
        out.append(vcard.serialize())
    return "".join(out)
