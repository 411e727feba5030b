"""Importing contact cards through a preview, and exporting them as LinkedIn CSV or vCard.

An upload is parsed at once (``card_files.parse_file``) into a preview (``ContactImport.entries``:
every row, what will happen to it and why) and nothing else is written. Confirming applies the
preview all or nothing: new cards are written "staged" (hidden) and one last transaction merges
the matches, un-stages the new cards and marks the import done. Up to ``CHUNK_THRESHOLD`` rows
that all happens in the confirming request; a larger file is confirmed by the worker ``CHUNK``
rows per transaction, with ``processed`` telling the page how far it got. Cancelling deletes the
staged cards, and previews nobody confirmed are dropped after ``PREVIEW_LIFETIME``.

A file that cannot be read is refused by the parser with an ``ImportFileError`` naming its line,
and nothing is stored.
"""

import csv
import io
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any, TypeVar, cast

import vobject
from sqlalchemy import CursorResult, delete, insert, select, update
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.db import utcnow
from marketplace.errors import Conflict, NotFound
from marketplace.jobs.service import enqueue
from marketplace.network.card_files import (
    EXTRA_COLUMNS,
    FORMULA_START,
    LINKEDIN_COLUMNS,
    MONTHS,
    ImportFileError,
    parse_file,
)
from marketplace.network.models import ContactCard, ContactImport, ImportStatus
from marketplace.network.service import CardData, card_fields, visible_cards

CHUNK_THRESHOLD = 2_000
CHUNK = 500
PREVIEW_LIFETIME = timedelta(days=1)
JOB_KIND = "network.import_cards"


# The preview -----------------------------------------------------------------------------------

Card = TypeVar("Card")


def _card_json(data: CardData) -> dict:
    return {**vars(data), "connected_on": data.connected_on.isoformat() if data.connected_on else None}


def _card_from_json(values: dict) -> CardData:
    connected = values.get("connected_on")
    return CardData(**{**values, "connected_on": date.fromisoformat(connected) if connected else None})


def _url_key(url: str | None) -> str | None:
    return "url:" + url.split("?")[0].rstrip("/").lower() if url else None


def _keys(email_keys: list[str], url: str | None) -> list[str]:
    return [*email_keys, *filter(None, [_url_key(url)])]


def _existing_keys(cards: Iterable[Card]) -> dict[str, Card]:
    """Every e-mail and LinkedIn address of the given cards (rows or ``ContactCard``s), to the card."""
    found: dict[str, Card] = {}
    for card in cards:
        fields: Any = card
        emails = [fields.email_key, *(e.lower() for e in fields.other_emails.split(",") if e)]
        for key in _keys([e for e in emails if e], fields.linkedin_url):
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
        entry: dict[str, Any] = {"line": row.line, "name": row.data.name if row.data else "", "reason": row.reason}
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
    if cast(CursorResult, result).rowcount != 1:
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
    if cast(CursorResult, result).rowcount != 1:
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
    if cast(CursorResult, result).rowcount != 1:
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
    return cast(CursorResult, result).rowcount


# Export ----------------------------------------------------------------------------------------


def _guard(value: str) -> str:
    """A cell a spreadsheet would run as a formula gets a leading apostrophe (OWASP CSV injection)."""
    return "'" + value if value.startswith(FORMULA_START) else value


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
