"""The network pages as people use them, forms submitted with their CSRF token: asking to connect
and confirming, contact cards, importing with a preview, exporting, and the problem page's reach
panel with its one-click forward. Nobody reaches another member's cards or imports."""

import io
import re

from sqlalchemy import func, select

from marketplace.jobs import service as jobs
from marketplace.network import imports, service
from marketplace.network.models import ContactCard, ContactImport
from marketplace.network.service import CardData
from marketplace.referrals.models import Referral
from tests.builders import connection as connect
from tests.builders import logged_in
from tests.network.test_imports import LINKEDIN, TRUNCATED_IN_QUOTES, large_file
from tests.statements import statements


def first_reach_path(page: str) -> list[str]:
    """The people on the first path the reach panel lists, as the page names them."""
    path = re.search(r'<ul class="chain d-inline">(.*?)</ul>', page, re.S)
    assert path is not None, "no path in the reach panel"
    return re.findall(r"<li>(.*?)</li>", path[1])


# The statement that reads the names along the reach's paths a process does not keep.
NAMES_ON_PATHS = "SELECT users.id, users.name, users.show_name_on_chains \nFROM users"


def test_asking_to_connect_and_confirming(browser, session, world):
    ann, bob = logged_in(browser, world.ann), logged_in(browser, world.bob)

    page = ann.submit("/network", {"email": "bob@example.com", "note": "We met at PyCon"}, action="/network/connect")
    assert "We asked Bob Martins" in page.text and "Waiting for their answer" in page.text

    page = bob.get("/network")
    assert "Asking to connect with you" in page.text and "We met at PyCon" in page.text
    request_id = re.search(r"/network/requests/(\d+)/confirm", page.text).group(1)
    page = bob.submit("/network", action=f"/network/requests/{request_id}/confirm")
    assert "You are now connected to Ann Li" in page.text

    page = ann.get("/network")
    assert "Bob Martins" in page.text and "We met at PyCon" in page.text
    assert re.search(r'fs-3 fw-semibold">1</div>\s*<div class="small text-body-secondary">connections', page.text)
    assert "1 connection · 0 at two hops" in ann.get("/profile").text

    page = ann.submit("/network", action=f"/network/connections/{world.bob.id}/remove")
    assert "Connection removed" in page.text and not service.is_connected(session, world.ann.id, world.bob.id)


def test_refused_and_cancelled_requests_on_the_page(browser, session, world):
    ann, bob = logged_in(browser, world.ann), logged_in(browser, world.bob)
    page = ann.submit("/network", {"email": "nobody@example.com", "note": "Hi"}, action="/network/connect")
    assert page.status_code == 200 and "No member has that e-mail address." in page.text
    # Someone who is not a member yet can be invited from there, with the sign-up link.
    assert 'data-invite="nobody@example.com"' in page.text
    assert 'href="mailto:nobody%40example.com?subject=' in page.text and "signup" in page.text
    page = ann.submit("/network", {"email": "bob@example.com", "note": "Hi"}, action="/network/connect")
    request_id = re.search(r"/network/requests/(\d+)/cancel", page.text).group(1)
    page = bob.submit("/network", action=f"/network/requests/{request_id}/cancel")
    assert "Only the member who asked can cancel a request." in page.text
    page = ann.submit("/network", action=f"/network/requests/{request_id}/cancel")
    assert "Request cancelled." in page.text and "Waiting for their answer" not in page.text


def test_contacts_who_are_members_are_offered_on_the_network_page(browser, session, world):
    service.create_card(session, world.ann, CardData(name="Bob from work", email="bob@example.com"))
    service.create_card(session, world.ann, CardData(name="Zed", email="zed@example.com"))
    session.commit()
    ann = logged_in(browser, world.ann)
    page = ann.get("/network")
    assert "1 of your contacts is a member: connect?" in page.text
    page = ann.submit("/network", {"note": "Same team"}, action=f"/network/suggestions/{world.bob.id}/connect")
    assert "We asked Bob Martins" in page.text and "connect?" not in page.text


def test_cards_are_added_searched_edited_and_deleted(browser, session, world):
    ann = logged_in(browser, world.ann)
    page = ann.submit(
        "/network/cards",
        {"name": "Björn Åkesson", "email": "bjorn@example.com", "company": "Fjällräven", "tags": "Postgres, DBA"},
    )
    assert "Card for Björn Åkesson added" in page.text
    page = ann.submit("/network/cards", {"name": "Other", "email": "BJORN@example.com"})
    assert "already has this e-mail address" in page.text
    assert "Björn" in ann.get("/network/cards?q=bjorn").text
    assert "Björn" not in ann.get("/network/cards?q=nobody").text
    assert "Björn" in ann.get("/network/cards?tag=dba").text

    card = session.scalars(select(ContactCard)).one()
    session.commit()  # the test's reads end before the next request writes
    page = ann.submit(f"/network/cards/{card.id}/edit", {"name": "Björn Å.", "tags": "dba", "notes": "Met in Umeå"})
    assert "Card saved" in page.text and "Björn Å." in page.text
    page = ann.submit("/network/cards", action=f"/network/cards/{card.id}/delete")
    assert "Card deleted" in page.text and session.scalar(select(func.count()).select_from(ContactCard)) == 0


def test_another_members_cards_and_imports_are_not_found(browser, session, world):
    card = service.create_card(session, world.bob, CardData(name="Bob's secret contact"))
    imported = imports.preview(session, world.bob, "Connections.csv", LINKEDIN)
    session.commit()
    ann = logged_in(browser, world.ann)
    assert "secret" not in ann.get("/network/cards").text
    assert ann.get(f"/network/cards/{card.id}/edit").status_code == 404
    assert ann.get(f"/network/import/{imported.id}").status_code == 404
    assert ann.get(f"/network/import/{imported.id}/progress").status_code == 404
    assert ann.submit("/network/cards", action=f"/network/cards/{card.id}/delete").status_code == 404
    assert ann.submit("/network/cards", action=f"/network/import/{imported.id}/confirm").status_code == 404
    assert "secret" not in ann.get("/network/cards/export.csv").text
    assert session.get(ContactCard, card.id) is not None
    assert browser().get("/network/cards").status_code == 302  # anonymous: to the log-in page


def test_import_preview_then_confirm(browser, session, world):
    ann = logged_in(browser, world.ann)
    page = ann.submit("/network/cards", {"file": (io.BytesIO(LINKEDIN), "Connections.csv")}, action="/network/import")
    assert "Import Connections.csv" in page.text
    assert "4 to add" in page.text and "1 to merge" in page.text and "1 skipped" in page.text
    assert "same person as line 5 of this file" in page.text and "no name" in page.text and "Björn Åkesson" in page.text
    assert session.scalar(select(func.count()).select_from(ContactCard)) == 0

    import_id = session.scalars(select(ContactImport.id)).one()
    session.commit()
    page = ann.submit(f"/network/import/{import_id}", action=f"/network/import/{import_id}/confirm")
    assert "Import finished: 4 new cards, 1 merged into cards you had, 1 skipped." in page.text
    assert "Chloé Dubois-Martin" in page.text

    download = ann.get("/network/cards/export.csv")
    assert download.mimetype == "text/csv" and "attachment" in download.headers["Content-Disposition"]
    assert download.text.startswith("First Name,Last Name,URL,Email Address,Company,Position,Connected On")
    assert "BEGIN:VCARD" in ann.get("/network/cards/export.vcf").text


def test_a_bad_file_is_refused_on_the_page(browser, session, world):
    ann = logged_in(browser, world.ann)
    page = ann.submit(
        "/network/cards", {"file": (io.BytesIO(b"%PDF-1.7\n\x00\x01"), "Connections.csv")}, action="/network/import"
    )
    assert page.status_code == 200 and "it looks binary" in page.text
    page = ann.submit("/network/cards", {"file": (io.BytesIO(TRUNCATED_IN_QUOTES), "c.csv")}, action="/network/import")
    assert "Line 6: the file ends inside a quoted field" in page.text
    assert session.scalar(select(func.count()).select_from(ContactImport)) == 0


def test_a_large_import_shows_its_progress(browser, session, world):
    ann = logged_in(browser, world.ann)
    page = ann.submit("/network/cards", {"file": (io.BytesIO(large_file(2_100)), "big.csv")}, action="/network/import")
    import_id = session.scalars(select(ContactImport.id)).one()
    session.commit()
    page = ann.submit(f"/network/import/{import_id}", action=f"/network/import/{import_id}/confirm")
    assert f'data-progress-url="/network/import/{import_id}/progress"' in page.text
    assert '<script src="/static/network/import-progress.js"></script>' in page.text
    assert ann.get("/static/network/import-progress.js").status_code == 200
    assert ann.get(f"/network/import/{import_id}/progress").json == {
        "status": "importing",
        "processed": 0,
        "total": 2_101,
    }
    assert "reload" not in page.text.split("<noscript>")[0].lower(), "the page follows it by itself"

    # Finished, the page says so with the final counts, not what was still "to add".
    jobs.work_once(session, "test-worker", kinds={imports.JOB_KIND})
    session.commit()
    finished = ann.get(f"/network/import/{import_id}").text
    assert "Finished on" in finished and "2100 new cards added" in finished
    assert "to add" not in finished and 'data-import-counts="final"' in finished


def test_the_problem_page_shows_who_a_member_can_reach_and_forwards_in_one_click(browser, session, world, open_problem):
    problem = open_problem()
    connect(session, world.ann, world.bob)
    connect(session, world.bob, world.dev)
    ann = logged_in(browser, world.ann)
    page = ann.get(f"/problems/{problem.id}")
    assert "You can reach 1 person with PostgreSQL skills — through\n      Bob Martins (1)." in page.text
    # Each connection's button posts the panel's one form to its own address.
    assert f'formaction="/problems/{problem.id}/forward-to/{world.bob.id}"' in page.text
    assert page.text.count('name="csrf_token"') == page.text.count("<form")
    page = ann.submit(f"/problems/{problem.id}", action=f"/problems/{problem.id}/forward-to/{world.bob.id}")
    assert "Forwarded to Bob Martins" in page.text
    referral = session.scalars(select(Referral).where(Referral.recipient_user_id == world.bob.id)).one()
    assert referral.sender_id == world.ann.id and referral.depth == 2  # Ann picked it up first
    session.commit()

    owner = logged_in(browser, world.owner)
    connect(session, world.employee, world.bob)
    page = owner.get(f"/problems/{problem.id}")
    assert "Best placed to start a chain" in page.text and "Ethan Employee" in page.text


def test_names_on_the_problem_page_follow_each_members_choice(browser, session, world, open_problem):
    problem = open_problem()
    world.cleo.show_name_on_chains = False
    session.commit()
    connect(session, world.ann, world.bob)
    connect(session, world.bob, world.cleo)
    connect(session, world.cleo, world.dev)
    page = logged_in(browser, world.ann).get(f"/problems/{problem.id}")
    assert first_reach_path(page.text) == ["you", "Bob Martins", "a member", "Dev Sharma"]
    assert "Cleo" not in page.text


def test_a_name_hidden_or_changed_on_the_profile_shows_on_the_next_page_every_process_serves(
    app, browser, session, world, open_problem
):
    """Each process keeps the names along the reach panel's paths (docs/network.md, "Names on
    paths") and reads them only once; a member who hides their name or changes it is shown as
    they chose on the very next page, not as the process kept them."""
    problem = open_problem()
    for a, b in [(world.ann, world.bob), (world.bob, world.cleo), (world.cleo, world.dev)]:
        connect(session, a, b)
    ann, cleo = logged_in(browser, world.ann), logged_in(browser, world.cleo)

    def path_on_the_page() -> list[str]:
        return first_reach_path(ann.get(f"/problems/{problem.id}").text)

    assert path_on_the_page() == ["you", "Bob Martins", "Cleo Duarte", "Dev Sharma"]
    with statements(app) as log:
        assert path_on_the_page() == ["you", "Bob Martins", "Cleo Duarte", "Dev Sharma"]
    assert not [sql for sql in log if sql.startswith(NAMES_ON_PATHS)], str(log)  # kept, not read again

    # The privacy box left unticked: Cleo hides her name on chains and paths.
    assert "Profile saved." in cleo.submit("/profile", {"name": "Cleo Duarte", "headline": "", "skills": ""}).text
    assert path_on_the_page() == ["you", "Bob Martins", "a member", "Dev Sharma"]
    assert "Cleo" not in ann.get(f"/problems/{problem.id}").text

    cleo.submit("/profile", {"name": "Cleo D. Duarte", "headline": "", "skills": "", "show_name_on_chains": "y"})
    assert path_on_the_page() == ["you", "Bob Martins", "Cleo D. Duarte", "Dev Sharma"]
    # Bob is Ann's own connection: named whatever he chooses, under the name he chose last.
    logged_in(browser, world.bob).submit("/profile", {"name": "Robert Martins", "headline": "", "skills": ""})
    assert path_on_the_page() == ["you", "Robert Martins", "Cleo D. Duarte", "Dev Sharma"]
