"""The second yardstick of ``bench/http.py`` and ``bench/instructions.py``: the smallest page a
logged-in member could be served by this stack, with nothing of the marketplace in it.

Flask with Flask-Login, a SQLAlchemy session per request that loads the member by primary key
from the same ``users`` table (one statement) and commits, Flask-WTF's CSRF token for a log-out
form, and a Jinja page extending a layout with Bootstrap-Flask's tags and a navigation of five
links. The engine is SQLAlchemy's as it comes (``create_engine`` with its defaults: no ping
before each checkout, pysqlite's own transactions); only the address is read as the marketplace
reads it (``normalize_url``: psycopg 3 for ``postgresql://``).

What a member's page costs beyond this is the page itself (its lists and forms) and what the
marketplace adds to every request (the navigation's statement, rate limits, security headers,
the audit's origin); what it costs up to this, no member's page on this stack can avoid
(docs/performance.md, "The floor under a member's page").

Configured from the environment as the marketplace is: ``DATABASE_URL`` and ``SECRET_KEY``.
"""

import os

from flask import Flask, redirect, render_template, request, url_for
from flask_bootstrap import Bootstrap5
from flask_login import LoginManager, login_required, login_user
from flask_wtf.csrf import CSRFProtect
from jinja2 import DictLoader
from sqlalchemy import String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, scoped_session, sessionmaker
from werkzeug.security import check_password_hash

from marketplace.db import normalize_url


class Base(DeclarativeBase):
    pass


class Member(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(256))

    is_authenticated = is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)


TEMPLATES = {
    "layout.html": """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{% block title %}{% endblock %}</title>
{{ bootstrap.load_css() }}</head>
<body><nav class="navbar"><ul class="navbar-nav">
<li><a href="{{ url_for('page') }}">Home</a></li><li><a href="{{ url_for('page') }}">Problems</a></li>
<li><a href="{{ url_for('page') }}">My chains</a></li><li><a href="{{ url_for('page') }}">Earnings</a></li>
<li><a href="{{ url_for('page') }}">{{ current_user.name }}</a></li>
<li><form method="post" action="{{ url_for('login') }}">
<input name="csrf_token" type="hidden" value="{{ csrf_token() }}"><button type="submit">Log out</button></form></li>
</ul></nav>
<main class="container">{% block content %}{% endblock %}</main>
{{ bootstrap.load_js() }}</body></html>""",
    "page.html": """{% extends "layout.html" %}{% block title %}Home{% endblock %}
{% block content %}<h1>Hello, {{ current_user.name }}</h1>{% endblock %}""",
    "login.html": """{% extends "layout.html" %}{% block content %}<form method="post">
<input name="csrf_token" type="hidden" value="{{ csrf_token() }}">
<input name="email"><input name="password" type="password"><button type="submit">Log in</button>
</form>{% endblock %}""",
}

app = Flask(__name__)
app.config.update(SECRET_KEY=os.environ.get("SECRET_KEY", "member-floor"), BOOTSTRAP_SERVE_LOCAL=True)
app.jinja_loader = DictLoader(TEMPLATES)
Session = scoped_session(sessionmaker(create_engine(normalize_url(os.environ["DATABASE_URL"])), expire_on_commit=False))
login_manager = LoginManager(app)
CSRFProtect(app)
Bootstrap5(app)


@login_manager.user_loader
def load_member(member_id: str) -> Member | None:
    return Session.get(Member, int(member_id))


@app.after_request
def commit(response):
    Session.commit()
    return response


@app.teardown_request
def end_session(_error) -> None:
    Session.remove()


@app.get("/")
@login_required
def page() -> str:
    return render_template("page.html")


@app.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        member = Session.scalars(select(Member).where(Member.email == request.form["email"])).one_or_none()
        if member is not None and check_password_hash(member.password_hash, request.form["password"]):
            login_user(member)
            return redirect(url_for("page"))
    return render_template("login.html")
