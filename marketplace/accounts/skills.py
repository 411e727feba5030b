"""A normalised skill vocabulary: one slug per skill, whatever case, spacing or alias is typed."""

import re
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace import signals
from marketplace.accounts.models import Skill, User
from marketplace.errors import ValidationError

ALIASES = {
    "postgres": "postgresql",
    "pg": "postgresql",
    "psql": "postgresql",
    "js": "javascript",
    "ts": "typescript",
    "golang": "go",
    "k8s": "kubernetes",
    "py": "python",
    "ml": "machine-learning",
    "react.js": "react",
    "reactjs": "react",
    "node": "node.js",
    "nodejs": "node.js",
    "aws": "amazon-web-services",
    "gcp": "google-cloud",
    "mongo": "mongodb",
    "rails": "ruby-on-rails",
    "ror": "ruby-on-rails",
    "tf": "terraform",
    "sklearn": "scikit-learn",
    "dotnet": ".net",
}

DISPLAY_NAMES = {
    "postgresql": "PostgreSQL",
    "javascript": "JavaScript",
    "typescript": "TypeScript",
    "kubernetes": "Kubernetes",
    "amazon-web-services": "AWS",
    "google-cloud": "Google Cloud",
    "node.js": "Node.js",
    "machine-learning": "Machine learning",
    "mongodb": "MongoDB",
    "ruby-on-rails": "Ruby on Rails",
    ".net": ".NET",
}

_MAX_SKILLS = 20


def skill_slug(name: str) -> str:
    """``" Postgres "``, ``"postgresql"`` and ``"PostgreSQL"`` all become ``"postgresql"``."""
    slug = re.sub(r"[\s_]+", "-", name.strip().lower())
    slug = re.sub(r"-{2,}", "-", slug).strip("-")
    return ALIASES.get(slug, slug)


def parse_skill_list(raw: str | Iterable[str]) -> list[str]:
    """Split a comma-separated string (or take a list) into distinct slugs, in order."""
    names = raw.split(",") if isinstance(raw, str) else list(raw)
    slugs: list[str] = []
    for name in names:
        if not isinstance(name, str):
            raise ValidationError("Skills must be text.", code="invalid_skills")
        slug = skill_slug(name)
        if not slug:
            continue
        if len(slug) > 64:
            raise ValidationError(f"Skill '{name[:20]}…' is too long.", code="invalid_skills")
        if slug not in slugs:
            slugs.append(slug)
    if len(slugs) > _MAX_SKILLS:
        raise ValidationError(f"At most {_MAX_SKILLS} skills.", code="invalid_skills")
    return slugs


def resolve_skills(session: Session, raw: str | Iterable[str]) -> list[Skill]:
    """The Skill rows for the given names, created on first use."""
    slugs = parse_skill_list(raw)
    if not slugs:
        return []
    existing = {s.slug: s for s in session.scalars(select(Skill).where(Skill.slug.in_(slugs)))}
    skills = []
    for slug in slugs:
        skill = existing.get(slug)
        if skill is None:
            skill = Skill(slug=slug, name=DISPLAY_NAMES.get(slug, slug.replace("-", " ").title()))
            session.add(skill)
        skills.append(skill)
    session.flush()
    return skills


def set_member_skills(session: Session, user: User, raw: str | Iterable[str]) -> None:
    """Replace a member's skills, announcing it when the set changed (the reach index follows)."""
    skills = resolve_skills(session, raw)
    if {s.id for s in skills} != {s.id for s in user.skills}:
        user.skills = skills
        session.flush()
        signals.member_skills_changed.send(user, session=session)
