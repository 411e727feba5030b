"""The layout's Bootstrap files come from the app itself, never a CDN, and follow wherever the
app is mounted (the tags are built once per mount point, ``marketplace.web.bootstrap_tags``), as
do the links the templates build and remember (``remembered_url_for``). The templates' globals
are fixed once the app is built, every kind of callable a template calls gets what it asks for,
and every value a template writes is escaped as Jinja escapes it (``marketplace.web.templating``)."""

import re

import pytest
from flask import url_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import Environment, pass_context, pass_environment, pass_eval_context
from markupsafe import Markup, escape

from marketplace.accounts.models import User
from marketplace.db import db
from marketplace.notifications import service as notifications
from marketplace.web.templating import TemplateContext
from tests import builders as build
from tests.statements import statements


def test_bootstrap_is_served_by_the_app_under_its_mount_point(client):
    for script_root in ("", "/market"):
        page = client.get("/login", base_url=f"http://localhost{script_root}").text
        assets = re.findall(r'<(?:link rel="stylesheet"|script) (?:href|src)="([^"]+)"', page)
        bootstrap = [url for url in assets if "bootstrap" in url]
        assert {url.rsplit(".", 1)[-1] for url in bootstrap} == {"css", "js"}, assets
        assert all(url.startswith(f"{script_root}/bootstrap/static/") for url in bootstrap), assets
        stylesheet = client.get(bootstrap[0].removeprefix(script_root))
        assert stylesheet.status_code == 200


def test_a_link_in_a_template_is_the_link_flask_builds_wherever_the_app_is_mounted(app):
    """The templates' ``url_for`` remembers each link it built (``remembered_url_for``): the same
    link as Flask's own, the mount point's prefix included, for each mount point in turn."""
    links = [
        ("problems.show", {"problem_id": 7}),
        ("problems.show", {"problem_id": 8}),
        ("referrals.landing", {"token": "a b/ç"}),
        ("main.member_list", {"name": "sent", "page": 2}),
        ("problems.board", {"skill": ["postgres", "kafka"]}),  # a list cannot be a key
        ("problems.show", {"problem_id": 7, "_anchor": "tree"}),
        ("problems.show", {"problem_id": 7, "_external": True}),
    ]
    template = app.jinja_env.from_string(
        "{% for endpoint, values in links %}{{ url_for(endpoint, **values) }}\n{% endfor %}"
    )
    for script_root in ("", "/market", "", "/other"):
        with app.test_request_context("/", base_url=f"http://localhost{script_root}"):
            expected = "".join(f"{escape(url_for(endpoint, **values))}\n" for endpoint, values in links)
            assert template.render(links=links) == expected
            assert template.render(links=links).startswith(f"{script_root}/problems/7\n")
    # Outside a request (a command, the worker), Flask builds every link, from ``SERVER_NAME``.
    app.config["SERVER_NAME"] = "market.example"
    try:
        with app.app_context():
            assert template.render(links=links) == "".join(f"{escape(url_for(e, **v))}\n" for e, v in links)
            assert template.render(links=links).startswith("http://market.example/problems/7\n")
    finally:
        app.config["SERVER_NAME"] = None


def test_no_global_can_be_added_once_the_app_is_built_and_templates_hold_every_global(app):
    """A template loaded after the app is built holds its globals as one plain dict, the fast
    case of Jinja's imports. That is only right if no global comes later, which would be missing
    from it: adding one raises instead."""
    with pytest.raises(TypeError):
        app.jinja_env.globals["late"] = "too late"
    with pytest.raises(TypeError):
        app.add_template_global(len, "late")
    layout = app.jinja_env.get_template("base.html")
    assert type(layout.globals) is dict
    assert layout.globals == dict(app.jinja_env.globals)
    assert {"url_for", "csrf_token", "bootstrap", "name_of"} <= layout.globals.keys()


def test_each_kind_of_callable_a_template_calls_gets_the_context_it_asks_for(app):
    """``TemplateContext.call`` calls macros, plain functions and built-in methods straight; what
    each receives must stay what Jinja's own dispatch gives it, in a loop and out of one, and
    callables marked to take the context, the evaluation context or the environment still get
    it through Jinja's dispatch."""

    class Greeter:
        @pass_context
        def __call__(self, context, name):
            return f"{context['greeting']} {name}"

    def plain(*args, **kwargs):
        return f"{args} {' '.join(f'{k}={v}' for k, v in kwargs.items())}"

    def stops():
        raise StopIteration

    template = app.jinja_env.from_string(
        "{% macro wrap(text, tag='b') %}<{{ tag }}>{{ text }}</{{ tag }}>{% endmacro %}"
        "{% macro with_caller() %}[{{ caller() }}]{% endmacro %}"
        "{% for n in [1, 2] %}{{ plain(n, key=n) }};{{ wrap('<x>', tag='i') }};{{ greeter('Ann') }};"
        "{{ in_context(n) }};{{ escaping() }};{{ env() }};{{ 'a b'.split()|join('+') }}|{% endfor %}"
        "{% call with_caller() %}inner{% endcall %}{{ wrap('<y>') }}{{ stops() is undefined }}"
    )
    html = template.render(
        greeting="Hello",
        plain=plain,
        greeter=Greeter(),
        in_context=pass_context(lambda context, n: f"{context['greeting']}{n}"),
        escaping=pass_eval_context(lambda eval_ctx: eval_ctx.autoescape),
        env=pass_environment(lambda environment: environment is app.jinja_env),
        stops=stops,
    )
    assert type(template.new_context()) is TemplateContext
    loop = "({n},) key={n};<i>&lt;x&gt;</i>;Hello Ann;Hello{n};True;True;a+b|"
    assert html == loop.format(n=1) + loop.format(n=2) + "[inner]<b>&lt;y&gt;</b>True"
    assert isinstance(app.jinja_env.from_string("{% macro m() %}<p>{% endmacro %}{{ m() }}").module.m(), Markup)


class _Safe:
    def __html__(self):
        return "<b>safe</b>"


class _Shouting:
    def __str__(self):
        return "<A & B>"


# Every kind of value a page writes, and every way a template writes it: in a loop, through a
# macro, a ``set`` block and a filter, with autoescaping switched off, and switched by a value
# (Jinja then decides on each write, with its own code).
_WRITES = (
    "{% macro m(v) %}<{{ v }}>{% endmacro %}{% set block %}[{{ value }}]{% endset %}"
    "{{ value }}|{{ m(value) }}|{{ block }}|{{ value|string|upper }}|{{ missing }}|{{ value ~ '&' }}|"
    "{% for v in values %}{{ v }},{% endfor %}|{% autoescape false %}{{ value }}{% endautoescape %}|"
    "{% autoescape flag %}{{ value }}{% endautoescape %}"
)
_JINJAS_OWN = Environment(autoescape=True).from_string(_WRITES)
_VALUES = ["plain", 3, 2.5, None, True, Markup("<i>kept</i>"), _Safe(), _Shouting(), "<x>&'\""]


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text())
def test_a_page_writes_every_value_as_jinjas_own_escaping_writes_it(app, text):
    """The app's templates escape each written value to text (``escape_text``) instead of to
    ``Markup``: the characters written must be the ones Jinja's own code writes, for any text
    and every kind of value, wherever the template writes it."""
    assert "escape_text(" in app.jinja_env.compile("{{ value }}", raw=True)
    ours = app.jinja_env.from_string(_WRITES)
    for value in [text, *_VALUES]:
        for flag in (True, False):
            context = {"value": value, "values": _VALUES, "flag": flag}
            assert ours.render(context) == _JINJAS_OWN.render(context)


def test_the_navigation_is_read_with_the_member_and_never_kept_past_its_request(app, session, world, browser):
    """A page that only reads loads its member and the navigation bar's companies and unread
    count in one statement (``web.navigation.load_member``). What it kept serves that request
    alone, even where one app context spans several requests: a form shown again with its
    errors, after the count changed, shows the new count."""
    owner = build.logged_in(browser, world.owner)
    notifications.notify(session, world.owner, "chain_grew", "navigation:1", notifications.Message("News"))
    session.commit()

    with statements(app) as log:
        page = owner.get("/notifications").text
    assert 'aria-label="Notifications, 1 unread"' in page and ">Acme Data</a>" in page
    assert sum("memberships" in sql for sql in log) == 1, log

    with app.app_context():
        assert 'aria-label="Notifications, 1 unread"' in owner.get("/notifications").text
        notifications.mark_read(db.session, db.session.get(User, world.owner.id), None)
        db.session.commit()
        refused = owner.submit("/notifications/settings", {"digest_hour": "seven"})
    assert refused.status_code in (400, 422)
    assert 'aria-label="Notifications, 0 unread"' in refused.text
