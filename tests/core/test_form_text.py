"""Every text field of every form goes through ``marketplace.text`` (``MarketplaceForm``): found
by walking the form classes, so a new form or field is covered without a word. The main pages
re-render with the message and change nothing, and hostile text never parks an e-mail."""

import pytest
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from wtforms import PasswordField, StringField, TextAreaField

from marketplace.accounts.models import User
from marketplace.jobs.models import Job, JobStatus
from marketplace.problems.models import Problem
from marketplace.web.forms import accounts, ledger, network, problems, webhooks
from marketplace.web.forms.base import MarketplaceForm
from tests.builders import count, logged_in

FORM_MODULES = (accounts, ledger, network, problems, webhooks)
REFUSED_EVERYWHERE = {"NUL": "Plain\x00text", "bidi override": "Plain \u202etxt.exe"}
REFUSED_IN_ONE_LINE = {"CR LF": "Plain\r\nBcc: evil@example.com", "zero-width space": "Pla\u200bin"}


def form_classes() -> list[type[FlaskForm]]:
    return [
        value
        for module in FORM_MODULES
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, FlaskForm) and value.__module__ == module.__name__
    ]


def test_every_form_is_a_marketplace_form():
    assert len(form_classes()) > 15
    assert all(issubclass(form, MarketplaceForm) for form in form_classes())


def text_fields(app):
    with app.test_request_context(method="POST"):
        for form_class in form_classes():
            for field in form_class(formdata=None, meta={"csrf": False}):
                if isinstance(field, StringField) and not isinstance(field, PasswordField):
                    yield form_class, field.name, isinstance(field, TextAreaField)


def errors_of(app, form_class, name: str, value: str) -> list[str]:
    with app.test_request_context(method="POST"):
        form = form_class(formdata=MultiDict({name: value}), meta={"csrf": False})
        form.validate()
        return form[name].errors


def test_every_text_field_refuses_invisible_characters_naming_itself(app):
    fields = list(text_fields(app))
    assert any(multi_line for *_, multi_line in fields) and any(not multi_line for *_, multi_line in fields)
    wrong = []
    for form_class, name, multi_line in fields:
        refused = REFUSED_EVERYWHERE if multi_line else {**REFUSED_EVERYWHERE, **REFUSED_IN_ONE_LINE}
        with app.test_request_context(method="POST"):
            label = str(form_class(formdata=None, meta={"csrf": False})[name].label.text)
        for what, value in refused.items():
            if not any(error.startswith(label) for error in errors_of(app, form_class, name, value)):
                wrong.append((form_class.__name__, name, what))
        if multi_line:
            for what, value in REFUSED_IN_ONE_LINE.items():
                if any("control characters" in error for error in errors_of(app, form_class, name, value)):
                    wrong.append((form_class.__name__, name, what))
    assert wrong == []


def no_mail_parked(session, sent_mail) -> None:
    sent_mail.deliver()
    assert session.scalars(select(Job).where(Job.status == JobStatus.PARKED)).all() == []


@pytest.mark.parametrize("name", ["Ann\r\nBcc: evil@example.com", "Ann\x00", "Ann \u202enilmda", "An\u200bn"])
def test_signup_with_a_hostile_name_rerenders_with_the_message_and_creates_nothing(browser, session, sent_mail, name):
    response = browser().signup(name, "ann@example.com")

    assert response.status_code == 200
    assert "Your name must be one line of visible text" in response.text
    assert count(session, User) == 0
    no_mail_parked(session, sent_mail)


@pytest.mark.parametrize("title", ["Fix replication\r\nBcc: x@example.com", "Fix \u202ereplication lag"])
def test_a_problem_with_a_hostile_title_is_not_saved(browser, session, world, sent_mail, title):
    person = logged_in(browser, world.owner)
    response = person.submit(
        f"/companies/{world.company.id}/problems/new",
        {
            "title": title,
            "description": "Our replicas fall minutes behind at peak; we need help.",
            "skills": "postgres",
            "bounty": "1000",
            "currency": "usd",
            "split_rule": "flat_fee_finder_rest",
            "max_depth": "6",
            "guarantee_days": "30",
            "visibility": "public",
            "expires_on": "2099-01-01",
            "publish": "Publish",
        },
    )
    assert response.status_code == 200
    assert "Title must be one line of visible text" in response.text
    assert count(session, Problem) == 0
    no_mail_parked(session, sent_mail)


@pytest.mark.parametrize("value", ["\x00", "replication\r\n", "\u202e", "%", "_"])
def test_hostile_search_words_on_the_pages_are_refused_or_harmless_never_a_server_error(browser, world, value):
    person = logged_in(browser, world.ann)
    for page in ("/problems", "/network/cards"):
        for name in ("q", "skill", "currency", "tag", "sort", "status"):
            response = person.get(page, query_string={name: value})
            assert response.status_code in (200, 400, 422), (page, name, response.status_code)


@pytest.mark.parametrize(
    "path", ["/r/ab%00c", "/i/ab%00c", "/invitations/a%00b", "/password/reset/a%0Ab", "/api/v1/referrals/a%00b/claim"]
)
def test_a_control_character_in_a_path_is_a_404_not_a_server_error(client, path):
    response = client.open(path, method="POST" if path.startswith("/api/") else "GET")
    assert response.status_code == 404
