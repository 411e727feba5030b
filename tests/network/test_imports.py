"""Importing contact cards from real-shaped LinkedIn and vCard files (``tests/network/data``, copies of the
shared samples): the preview says what is added, merged or skipped and why; confirming imports
everything or nothing; bad files are refused with their line and leave nothing behind; large files
are confirmed in chunks by the worker; exports import back to the same cards."""

from pathlib import Path

import pytest
from sqlalchemy import func, select

from marketplace.jobs import service as jobs
from marketplace.network import imports, service
from marketplace.network.card_files import ImportFileError
from marketplace.network.models import ContactCard, ContactImport, ImportStatus
from marketplace.network.service import CardData

DATA = Path(__file__).parent / "data"
LINKEDIN = (DATA / "linkedin-Connections.csv").read_bytes()
VCARDS = (DATA / "contacts.vcf").read_bytes()
HEADER = "First Name,Last Name,URL,Email Address,Company,Position,Connected On\n"


def rows(session) -> tuple[int, int]:
    """(cards, imports) in the database: a refused file or a failed confirm changes neither."""
    count = lambda model: session.scalar(select(func.count()).select_from(model))  # noqa: E731
    return count(ContactCard), count(ContactImport)


def summary(imported: ContactImport) -> list[tuple]:
    return [(e["line"], e["name"], e["action"], e["reason"]) for e in imported.entries]


def cards_of(session, user) -> list[CardData]:
    return [CardData.of(card) for card in service.all_cards(session, user)]


def import_file(session, user, raw: bytes, name="file") -> ContactImport:
    imported = imports.preview(session, user, name, raw)
    imports.confirm(session, user, imported.id)
    session.commit()
    return imported


def test_linkedin_preview_adds_merges_and_skips_with_reasons(session, world):
    imported = imports.preview(session, world.ann, "Connections.csv", LINKEDIN)
    session.commit()
    assert imported.source.value == "linkedin" and imported.status == ImportStatus.PREVIEW
    assert summary(imported) == [
        (5, "Ann Lindqvist", "add", ""),
        (6, "Björn Åkesson", "add", ""),
        (7, "Chloé Dubois-Martin", "add", ""),
        (8, "Dev Patel", "add", ""),
        (9, "Ann Lindqvist", "merge", "same person as line 5 of this file; nothing new"),
        (10, "", "skip", "no name"),
    ]
    assert rows(session) == (0, 1)  # a preview writes no card

    imports.confirm(session, world.ann, imported.id)
    session.commit()
    assert imported.status == ImportStatus.DONE
    cards = {c.name: c for c in cards_of(session, world.ann)}
    assert sorted(cards) == ["Ann Lindqvist", "Björn Åkesson", "Chloé Dubois-Martin", "Dev Patel"]
    assert cards["Björn Åkesson"].email is None and cards["Björn Åkesson"].position == "Head of Data, Platform"
    assert cards["Chloé Dubois-Martin"].company == "Acme, Inc."
    assert cards["Ann Lindqvist"].email == "ann.lindqvist@example.com" and cards["Ann Lindqvist"].other_emails == []
    assert str(cards["Dev Patel"].connected_on) == "2021-07-07"
    assert {c.source.value for c in service.all_cards(session, world.ann)} == {"linkedin"}


def test_importing_the_same_file_again_merges_everything(session, world):
    import_file(session, world.ann, LINKEDIN)
    before = cards_of(session, world.ann)
    again = imports.preview(session, world.ann, "Connections.csv", LINKEDIN)
    assert [(e["line"], e["action"]) for e in again.entries] == [
        (5, "merge"),
        (6, "merge"),  # no e-mail, but the same LinkedIn profile
        (7, "merge"),
        (8, "merge"),
        (9, "merge"),
        (10, "skip"),
    ]
    assert again.entries[0]["reason"] == "already in your cards as Ann Lindqvist; empty fields are filled in"
    imports.confirm(session, world.ann, again.id)
    session.commit()
    assert cards_of(session, world.ann) == before


def test_a_merge_fills_empty_fields_and_adds_tags_without_overwriting(session, world):
    service.create_card(session, world.ann, CardData(name="Dev P.", email="DEV.PATEL@example.com", position="DBA"))
    session.commit()
    extra = HEADER.replace("Connected On", "Connected On,Tags") + (
        "Dev,Patel,,dev.patel@example.com,Contoso,Postgres DBA,07 Jul 2021,postgresql\n"
    )
    imported = import_file(session, world.ann, extra.encode())
    assert [e["action"] for e in imported.entries] == ["merge"]
    (card,) = cards_of(session, world.ann)
    assert (card.name, card.email, card.position, card.company, card.tags) == (
        "Dev P.",
        "DEV.PATEL@example.com",
        "DBA",
        "Contoso",
        ["postgresql"],
    )


def test_vcards_of_both_versions_with_several_e_mails_categories_and_none(session, world):
    imported = imports.preview(session, world.ann, "contacts.vcf", VCARDS)
    assert imported.source.value == "vcard"
    assert summary(imported) == [
        (1, "Ngozi Okafor", "add", ""),
        (11, "José Álvarez", "add", ""),
        (20, "No Email Person", "add", ""),
    ]
    imports.confirm(session, world.ann, imported.id)
    session.commit()
    cards = {c.name: c for c in cards_of(session, world.ann)}
    assert cards["José Álvarez"].email == "jose.alvarez@example.net"
    assert cards["José Álvarez"].other_emails == ["jalvarez@example.com"]
    assert cards["José Álvarez"].tags == ["postgresql", "replication"]
    assert cards["Ngozi Okafor"].position == "Payments Engineer" and "Stripe Connect" in cards["Ngozi Okafor"].notes
    assert cards["No Email Person"].email is None and cards["No Email Person"].company == "Somewhere"
    # Either e-mail of a card matches it later.
    csv = HEADER + "José,Álvarez,,JALVAREZ@example.com,,Data engineer,\n"
    again = imports.preview(session, world.ann, "x.csv", csv.encode())
    assert [e["action"] for e in again.entries] == ["merge"]


def test_unusable_fields_are_left_out_with_a_warning(session, world):
    csv = HEADER + "Zoë,Ng,javascript:alert(1),not-an-address,Acme,,sometime\n"
    imported = imports.preview(session, world.ann, "c.csv", csv.encode())
    assert summary(imported) == [
        (
            2,
            "Zoë Ng",
            "add",
            "left out the e-mail 'not-an-address'; left out the address 'javascript:alert(1)'; "
            "left out the date 'sometime'",
        )
    ]
    assert imported.entries[0]["card"]["email"] is None and imported.entries[0]["card"]["linkedin_url"] is None


TRUNCATED_IN_QUOTES = LINKEDIN[: LINKEDIN.index(b"Head of Data") + 4]
TRUNCATED_MID_ROW = LINKEDIN[: LINKEDIN.index(b"Contoso") - 1]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (TRUNCATED_IN_QUOTES, "Line 6: the file ends inside a quoted field, so it looks truncated"),
        (TRUNCATED_MID_ROW, "Line 8 has 4 fields where the header (line 4) has 7"),
        (b"Name,Email\nAnn,ann@example.com\n", "Line 1: this is not LinkedIn's Connections.csv"),
        (b"\n\nFirst,Last\n", "Line 3: this is not LinkedIn's Connections.csv"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "it looks binary"),
        (b"PK\x03\x04\x14\x00\x06\x00", "it looks binary"),
        (HEADER.encode() + "Zoë,Ång,,,,,\n".encode("latin-1"), "Line 2 is not UTF-8 text"),
        (b"", "The file is empty."),
        (HEADER.encode(), "The file holds no contacts."),
        (VCARDS[: VCARDS.index(b"END:VCARD", 300)], "Line 11: the card that begins here has no END:VCARD"),
        (b"BEGIN:VCARD\nVERSION:3.0\nFN:A\nthis is not a property\nEND:VCARD\n", "Line 4: 'this is not a property'"),
        (b"BEGIN:VCARD\nFN:A\nBEGIN:VCARD\n", "Line 3: a new card begins before the card of line 1 has ended"),
        (VCARDS + b"\nhello\n", "Line 27: expected BEGIN:VCARD, found 'hello'"),
    ],
)
def test_bad_files_are_refused_naming_the_line_and_nothing_is_stored(session, world, raw, message):
    with pytest.raises(ImportFileError) as raised:
        imports.preview(session, world.ann, "upload", raw)
    assert message in raised.value.message
    session.rollback()
    assert rows(session) == (0, 0)


def test_a_failing_confirm_imports_nothing(session, world, monkeypatch):
    imported = imports.preview(session, world.ann, "Connections.csv", LINKEDIN)
    session.commit()
    original = imports.card_fields

    def fail_on_dev(data):
        if data.name == "Dev Patel":
            raise RuntimeError("disk full")
        return original(data)

    monkeypatch.setattr(imports, "card_fields", fail_on_dev)
    with pytest.raises(RuntimeError):
        imports.confirm(session, world.ann, imported.id)
    session.rollback()
    assert rows(session) == (0, 1) and session.get(ContactImport, imported.id).status == ImportStatus.PREVIEW


def test_a_confirmed_or_cancelled_import_cannot_run_again(session, world):
    imported = import_file(session, world.ann, VCARDS)
    with pytest.raises(imports.Conflict):
        imports.confirm(session, world.ann, imported.id)
    with pytest.raises(imports.Conflict):
        imports.cancel(session, world.ann, imported.id)
    session.rollback()
    other = imports.preview(session, world.ann, "again.vcf", VCARDS)
    imports.cancel(session, world.ann, other.id)
    session.commit()
    with pytest.raises(imports.Conflict):
        imports.confirm(session, world.ann, other.id)


def test_nobody_sees_or_confirms_another_members_import(session, world):
    imported = imports.preview(session, world.bob, "Connections.csv", LINKEDIN)
    session.commit()
    for action in (imports.get_import, imports.confirm, imports.cancel):
        with pytest.raises(imports.NotFound):
            action(session, world.ann, imported.id)


def large_file(count: int) -> bytes:
    lines = [f"Person,Number {i},,person{i}@example.com,Big Co,Engineer,01 Feb 2020\n" for i in range(count)]
    return (HEADER + "".join(lines) + "Person,Number 0,,PERSON0@example.com,,,\n").encode()


def test_a_large_file_is_confirmed_in_chunks_and_shows_only_when_complete(session, world, monkeypatch):
    monkeypatch.setattr(imports, "CHUNK", 1_000)
    imported = imports.preview(session, world.ann, "big.csv", large_file(2_500))
    session.commit()
    assert imported.total == 2_501
    imports.confirm(session, world.ann, imported.id)
    session.commit()
    assert imported.status == ImportStatus.IMPORTING and imported.processed == 0

    assert imports.step(session, imported) is False  # what the worker does, one chunk per transaction
    session.commit()
    assert imported.processed == 1_000
    assert rows(session)[0] == 1_000 and service.search_cards(session, world.ann, q="person").items == []

    report = jobs.work_once(session, "test-worker", kinds={imports.JOB_KIND})
    assert report.performed == 1
    session.refresh(imported)
    assert imported.status == ImportStatus.DONE and imported.processed == 2_501
    assert len(service.all_cards(session, world.ann)) == 2_500
    assert rows(session)[0] == 2_500


def test_cancelling_a_large_import_midway_leaves_nothing(session, world, monkeypatch):
    monkeypatch.setattr(imports, "CHUNK", 1_000)
    imported = imports.preview(session, world.ann, "big.csv", large_file(2_100))
    imports.confirm(session, world.ann, imported.id)
    session.commit()
    imports.step(session, imported)
    session.commit()
    imports.cancel(session, world.ann, imported.id)
    session.commit()
    assert rows(session) == (0, 1)
    jobs.work_once(session, "test-worker", kinds={imports.JOB_KIND})  # the job finds it cancelled
    assert rows(session) == (0, 1)


@pytest.mark.parametrize("export", [imports.export_csv, imports.export_vcard])
def test_an_export_imports_back_to_the_same_cards(session, world, export):
    import_file(session, world.ann, LINKEDIN)
    import_file(session, world.ann, VCARDS)
    service.create_card(
        session,
        world.ann,
        CardData(
            name="=HYPERLINK(evil) Mary Ann Smith",
            email="mary@example.com",
            other_emails=["m.smith@example.org"],
            company="-Dash; Co, Ltd",
            position="@ceo",
            tags=["+plus", "former colleague"],
            notes='Line one\nline two, "quoted"; semi',
            linkedin_url="https://www.linkedin.com/in/mary",
        ),
    )
    session.commit()
    exported = export(service.all_cards(session, world.ann))
    if export is imports.export_csv:
        assert "'=HYPERLINK(evil)" in exported and "'@ceo" in exported  # inert in a spreadsheet
    import_file(session, world.bob, exported.encode())
    assert cards_of(session, world.bob) == cards_of(session, world.ann)
