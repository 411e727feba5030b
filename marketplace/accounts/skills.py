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
    # Names whose case carries meaning, shown right even when typed in lower case.
    "gdpr": "GDPR",
    "hipaa": "HIPAA",
    "soc-2": "SOC 2",
    "finops": "FinOps",
    "devops": "DevOps",
    "mlops": "MLOps",
    "mysql": "MySQL",
    "sql": "SQL",
    "graphql": "GraphQL",
    "php": "PHP",
    "html": "HTML",
    "css": "CSS",
    "ios": "iOS",
    "seo": "SEO",
    "ux": "UX",
    "llm": "LLM",
}

_MAX_SKILLS = 20


def skill_slug(name: str) -> str:
    """``" Postgres "``, ``"postgresql"`` and ``"PostgreSQL"`` all become ``"postgresql"``."""
    slug = _spelled(name)
    return ALIASES.get(slug, slug)


def display_name(slug: str, typed: str) -> str:
    """How a new skill is shown: the vocabulary's name, else as first typed, keeping the case the
    person gave it (GDPR, FinOps); only an all-lower-case name gets a capital first letter."""
    if slug in DISPLAY_NAMES:
        return DISPLAY_NAMES[slug]
    name = " ".join(typed.split())
    if name == name.lower() or ALIASES.get(_spelled(typed)) == slug:  # no case given, or an alias
        name = slug.replace("-", " ")
        return name[:1].upper() + name[1:]
    return name


def _spelled(name: str) -> str:
    slug = re.sub(r"[\s_]+", "-", name.strip().lower())
    return re.sub(r"-{2,}", "-", slug).strip("-")


def parse_skill_list(raw: str | Iterable[str]) -> list[str]:
    """Split a comma-separated string (or take a list) into distinct slugs, in order."""
    return list(_typed_skills(raw))


def _typed_skills(raw: str | Iterable[str]) -> dict[str, str]:
    """Distinct slugs, in order, each with the name it was first typed as."""
    names = raw.split(",") if isinstance(raw, str) else list(raw)
    slugs: dict[str, str] = {}
    for name in names:
        if not isinstance(name, str):
            raise ValidationError("Skills must be text.", code="invalid_skills")
        slug = skill_slug(name)
        if not slug:
            continue
        if len(slug) > 64:
            raise ValidationError(f"Skill '{name[:20]}…' is too long.", code="invalid_skills")
        slugs.setdefault(slug, name)
    if len(slugs) > _MAX_SKILLS:
        raise ValidationError(f"At most {_MAX_SKILLS} skills.", code="invalid_skills")
    return slugs


def resolve_skills(session: Session, raw: str | Iterable[str]) -> list[Skill]:
    """The Skill rows for the given names, created on first use."""
    typed = _typed_skills(raw)
    slugs = list(typed)
    if not slugs:
        return []
    existing = {s.slug: s for s in session.scalars(select(Skill).where(Skill.slug.in_(slugs)))}
    skills = []
    for slug in slugs:
        skill = existing.get(slug)
        if skill is None:
            skill = Skill(slug=slug, name=display_name(slug, typed[slug]))
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
