"""What people see of chains: the referral tree as each viewer may see it, and a member's dashboard.

Names follow each member's privacy choice (``referrals.appearance``).
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Integer, Select, String, bindparam, cast, literal, null, or_, select, union_all
from sqlalchemy.orm import Session, aliased, joinedload

from marketplace.accounts.models import Role, User
from marketplace.accounts.service import role_in
from marketplace.db import InstanceLoader, Prepared, Read, connection_of
from marketplace.errors import NotFound, ValidationError
from marketplace.keyset import Window, seek
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals import appearance, introductions, records, visibility
from marketplace.referrals.chains import chain_to, place_of
from marketplace.referrals.models import Introduction, IntroductionStatus, Referral, ReferralStatus


def involved_in(session: Session, viewer: User | None, problem: Problem) -> bool:
    """The people of a problem: its company's members and the members holding a place in one of
    its chains (who may see its history and the fingerprint of the chain it paid)."""
    if viewer is None:
        return False
    return role_in(session, viewer, problem.company_id) is not None or place_of(session, viewer, problem.id) is not None


# The referral tree -----------------------------------------------------------------------------


@dataclass
class TreeNode:
    referral: Referral
    label: str
    children: list["TreeNode"] = field(default_factory=list)


@dataclass
class ChainView:
    """Every referral of one problem, loaded once with the people on them, and what one viewer
    may see of them: the problem page's tree, the viewer's own chain and each introduction's
    chain all come from this one query."""

    referrals: list[Referral]
    place: Referral | None
    seen_by: appearance.Viewer
    is_company: bool

    @property
    def holders(self) -> set[int]:
        """Who holds a place on any of the problem's chains (they cannot be forwarded it again)."""
        return {r.holder_id for r in self.referrals if r.holder_id is not None}

    def members_to(self, referral: Referral | None) -> list[User]:
        """The paid links of the chain down to ``referral``, top first (``chains.chain_members``
        without a query: every parent is in the session already)."""
        return [r.holder for r in chain_to(referral) if r.holder is not None]

    def tree(self) -> list[TreeNode]:
        """The referral tree as the viewer may see it.

        The company sees every chain; a chain member sees the path above them and what grew
        below them; names follow each member's privacy choice (``referrals.appearance``).
        """
        children: dict[int | None, list[Referral]] = {}
        for referral in self.referrals:
            children.setdefault(referral.parent_id, []).append(referral)
        place_id = self.place.id if self.place else None
        path_ids = {r.id for r in chain_to(self.place)}

        def build(referral: Referral, below_place: bool) -> TreeNode | None:
            if not self.is_company and not below_place and referral.id not in path_ids:
                return None
            node = TreeNode(referral, appearance.recipient_of(referral, self.seen_by))
            for child in children.get(referral.id, []):
                sub = build(child, below_place or referral.id == place_id)
                if sub is not None:
                    node.children.append(sub)
            return node

        return [n for n in (build(root, False) for root in children.get(None, [])) if n is not None]


# Built once: every page of a problem reads its chains (docs/performance.md, "What limits them"),
# as a ``Prepared`` statement into the ORM's own instances: through the ORM's query, loading each
# row and its two people cost twice as much as reading them. Of each link's member, what the
# chain shows (``appearance``): who they are, their name and whether they show it.
_REFERRALS = InstanceLoader(Referral)
_PEOPLE = InstanceLoader(User, only=(User.id, User.name, User.show_name_on_chains))
_HOLDER, _RECIPIENT = aliased(User), aliased(User)
_CHAINS_OF_PROBLEM = Prepared(
    select(*_REFERRALS.columns, *_PEOPLE.columns_of(_HOLDER), *_PEOPLE.columns_of(_RECIPIENT))
    .outerjoin(_HOLDER, _HOLDER.id == Referral.holder_id)
    .outerjoin(_RECIPIENT, _RECIPIENT.id == Referral.recipient_user_id)
    .where(Referral.problem_id == bindparam("problem_id", type_=Integer))
    .order_by(Referral.id)
)


def chains_read(problem_id: int) -> Read:
    """The statement ``chains_of`` runs, to be read ahead with a page's others."""
    return _CHAINS_OF_PROBLEM.read(problem_id=problem_id)


def chains_of(session: Session, problem_id: int) -> list[Referral]:
    """Every referral of the problem, oldest first, with its holder, its recipient and its
    parent loaded: nothing a chain shows or walks up to loads on its own afterwards."""
    holder_at = len(_REFERRALS.columns)
    recipient_at = holder_at + len(_PEOPLE.columns)
    referrals: dict[int, Referral] = {}
    for row in chains_read(problem_id).all(connection_of(session)):
        referral = _REFERRALS.instance(session, row[:holder_at])
        _REFERRALS.relate(
            referral,
            holder=_PEOPLE.instance_if_any(session, row[holder_at:recipient_at]),
            recipient_user=_PEOPLE.instance_if_any(session, row[recipient_at:]),
            # A parent is older than its children, so it was read first.
            parent=referrals.get(referral.parent_id) if referral.parent_id is not None else None,
        )
        referrals[referral.id] = referral
    return list(referrals.values())


def chain_view(session: Session, viewer: User | None, problem: Problem, *, is_company: bool) -> ChainView:
    referrals = chains_of(session, problem.id)
    viewer_id = getattr(viewer, "id", None)
    place = next(
        (r for r in referrals if viewer_id and r.holder_id == viewer_id and r.status == ReferralStatus.CLAIMED), None
    )
    return ChainView(referrals, place, appearance.viewer_among(viewer, referrals), is_company)


@dataclass
class ProblemPage:
    """What the problem page shows of chains and introductions, to one viewer."""

    problem: Problem
    role: Role | None
    chains: ChainView
    introductions: list[Introduction]
    records: dict[int, records.TrackRecord]

    @property
    def involved(self) -> bool:
        """The viewer is one of the problem's people: a member of its company or of a chain
        (``involved_in``, without a query)."""
        return self.role is not None or self.chains.place is not None


def problem_page(session: Session, viewer: User | None, problem_id: int) -> ProblemPage:
    """Everything the problem page needs from this domain in four statements, whatever the
    number of chains and introductions: the problem with the viewer's role, every referral with
    its people, and for the company the introductions with their introducers and their records."""
    problem, role = visibility.visible_with_role(session, viewer, problem_id)
    chains = chain_view(session, viewer, problem, is_company=role is not None)
    listed = introductions.review_list(session, problem) if role is not None else []
    track = records.track_records(session, sorted({i.introducer_id for i in listed}))
    return ProblemPage(problem, role, chains, listed, track)


def tree(session: Session, viewer: User, problem: Problem) -> list[TreeNode]:
    """The referral tree as the viewer may see it; only the company and chain members see one."""
    view = chain_view(session, viewer, problem, is_company=role_in(session, viewer, problem.company_id) is not None)
    if not view.is_company and view.place is None:
        raise NotFound("You are not part of a chain for this problem.")
    return view.tree()


def tree_as_dict(node: TreeNode) -> dict:
    r = node.referral
    return {
        "id": r.id,
        "depth": r.depth,
        "status": r.status.value,
        "member": node.label,
        "claimed_at": r.claimed_at.isoformat() if r.claimed_at else None,
        "children": [tree_as_dict(c) for c in node.children],
    }


def awaiting_decision(session: Session, company_id: int, limit: int = 50) -> list[Introduction]:
    """Introductions the candidate agreed to on the company's open problems, waiting for the
    company's decision, longest waiting first (the company page lists them before anything else)."""
    return list(
        session.scalars(
            select(Introduction)
            .join(Problem, Problem.id == Introduction.problem_id)
            .where(
                Problem.company_id == company_id,
                Problem.status == ProblemStatus.OPEN,
                Introduction.status == IntroductionStatus.PROPOSED,
            )
            .order_by(Introduction.consented_at, Introduction.id)
            .limit(limit)
            .options(joinedload(Introduction.problem).load_only(Problem.id, Problem.title))
        )
    )


# The member's dashboard ------------------------------------------------------------------------


# The dashboard shows the newest few rows of each of the member's lists; each list has its own
# page, a page of ``LIST_PAGE_SIZE`` rows at a time, so nothing a member did drops out of sight.
DASHBOARD_PREVIEW = 5
LIST_PAGE_SIZE = 50
MAX_LIST_PAGE = 10_000


@dataclass(frozen=True)
class MemberList:
    """A page of one of the member's lists: plain rows of the columns it shows, named tuples
    (``row.title``), not mapped objects (loading them as referrals with their problem and people
    cost about seven times as much: docs/performance.md, "What limits them"), newest first."""

    name: str
    rows: Sequence[Any]
    page: int
    has_more: bool


@dataclass(frozen=True)
class Dashboard:
    # Referrals sent to the member that are not their place: a received referral they joined is
    # one of their ``places`` already, shown there with who sent it, not twice.
    received: MemberList
    sent: MemberList
    places: MemberList
    introductions_made: MemberList
    introductions_received: MemberList


_SENDER, _RECIPIENT, _INTRODUCER = aliased(User), aliased(User), aliased(User)
# The columns each kind of list shows; each list adds its own condition (``_WHERE``).
_REFERRAL_ROWS = (
    select(
        Referral.id,
        Referral.problem_id,
        Referral.token,
        Referral.depth,
        Referral.status,
        Referral.created_at,
        Referral.recipient_email,
        Problem.title,
        Problem.bounty_amount,
        Problem.currency,
        _SENDER.name.label("sender_name"),
        _RECIPIENT.name.label("recipient_name"),
    )
    .join(Problem, Problem.id == Referral.problem_id)
    .outerjoin(_SENDER, _SENDER.id == Referral.sender_id)
    .outerjoin(_RECIPIENT, _RECIPIENT.id == Referral.recipient_user_id)
)
_INTRODUCTION_ROWS = (
    select(
        Introduction.id,
        Introduction.problem_id,
        Introduction.consent_token,
        Introduction.status,
        Introduction.created_at,
        Introduction.consented_at,
        Introduction.decided_at,
        Introduction.candidate_name,
        Introduction.candidate_email,
        Problem.title,
        _INTRODUCER.name.label("introducer_name"),
    )
    .join(Problem, Problem.id == Introduction.problem_id)
    .join(_INTRODUCER, _INTRODUCER.id == Introduction.introducer_id)
)

_MEMBER = bindparam("member_id", type_=Integer)
_ADDRESS = bindparam("address", type_=String)
# What was sent or introduced to the member's address shows only once they have proven it is theirs.
_SENT_TO_THEM = {
    False: Referral.recipient_user_id == _MEMBER,
    True: or_(Referral.recipient_user_id == _MEMBER, Referral.recipient_email == _ADDRESS),
}
_INTRODUCED_TO_THEM = {
    False: Introduction.candidate_user_id == _MEMBER,
    True: or_(Introduction.candidate_user_id == _MEMBER, Introduction.candidate_email == _ADDRESS),
}


@dataclass(frozen=True)
class _ListQuery:
    """One of the member's lists: its rows' statement, without an order, and the columns it is
    ordered by, newest first (the id after the time, so that ties never reshuffle)."""

    rows: Select
    created_at: Any
    row_id: Any

    def newest_first(self) -> Select:
        return self.rows.order_by(self.created_at.desc(), self.row_id.desc())


def _referrals(*conditions: Any) -> _ListQuery:
    return _ListQuery(_REFERRAL_ROWS.where(*conditions), Referral.created_at, Referral.id)


def _introductions(*conditions: Any) -> _ListQuery:
    return _ListQuery(_INTRODUCTION_ROWS.where(*conditions), Introduction.created_at, Introduction.id)


# Each list by the name in its page's address, then by whether the member's address is verified.
_WHERE: dict[str, dict[bool, _ListQuery]] = {
    "places": dict.fromkeys((False, True), _referrals(Referral.holder_id == _MEMBER)),
    "received": {
        verified: _referrals(
            sent_to_them,
            Referral.sender_id.is_not(None),
            or_(Referral.holder_id.is_(None), Referral.holder_id != _MEMBER),
        )
        for verified, sent_to_them in _SENT_TO_THEM.items()
    },
    "sent": dict.fromkeys((False, True), _referrals(Referral.sender_id == _MEMBER)),
    "introductions-made": dict.fromkeys((False, True), _introductions(Introduction.introducer_id == _MEMBER)),
    "introductions-received": {
        verified: _introductions(introduced_to_them, Introduction.introducer_id != _MEMBER)
        for verified, introduced_to_them in _INTRODUCED_TO_THEM.items()
    },
}

# A page of a list on the member's pages: ``limit`` rows from ``offset`` on. Built once: the
# dashboard is a member's home page.
_LIMIT, _OFFSET = bindparam("limit", type_=Integer), bindparam("offset", type_=Integer)
_LISTS: dict[str, dict[bool, Prepared]] = {
    name: {
        verified: Prepared(query.newest_first().limit(_LIMIT).offset(_OFFSET)) for verified, query in by_address.items()
    }
    for name, by_address in _WHERE.items()
}


# The dashboard's five lists, by the kind of row each shows, and where each kind's columns sit
# in a row of the dashboard's statement.
_DASHBOARD_LISTS = {
    "referral": ("places", "received", "sent"),
    "introduction": ("introductions-made", "introductions-received"),
}
_KIND_OF_LIST = {name: kind for kind, names in _DASHBOARD_LISTS.items() for name in names}
_ROW_COLUMNS = {"referral": _REFERRAL_ROWS.selected_columns, "introduction": _INTRODUCTION_ROWS.selected_columns}
_WIDTH = len(_ROW_COLUMNS["referral"])
_SLICE_OF = {"referral": slice(0, _WIDTH), "introduction": slice(_WIDTH, _WIDTH + len(_ROW_COLUMNS["introduction"]))}


def _dashboard_part(name: str, verified: bool) -> Select:
    """The newest ``limit`` rows of one list as its first page reads them, in the columns of
    both kinds of row, the other kind's null, and the list's name last."""
    own = _WHERE[name][verified].newest_first().limit(_LIMIT).subquery()
    kind = _KIND_OF_LIST[name]
    # Typed nulls: PostgreSQL matches the types of a union's branches two at a time.
    columns = [
        own.c[key] if of == kind else cast(null(), column.type)
        for of, of_columns in _ROW_COLUMNS.items()
        for key, column in of_columns.items()
    ]
    return select(*columns, literal(name, String))


# The dashboard's five lists in one statement, all under ``UNION ALL``: on PostgreSQL every
# statement is a round trip. Built once, as ``_LISTS``. Its rows are read as they come and each
# list's own columns converted by its own statement (``Prepared.row_of``): converting the other
# kind's nulls too cost more than the round trip saves on SQLite.
_DASHBOARD: dict[bool, Prepared] = {
    verified: Prepared(union_all(*(_dashboard_part(name, verified) for name in _KIND_OF_LIST)))
    for verified in (False, True)
}


def _page(connection: Connection, user: User, name: str, page: int, size: int) -> MemberList:
    parameters = {"member_id": user.id, "address": user.email, "limit": size + 1, "offset": (page - 1) * size}
    rows = _LISTS[name][bool(user.email_verified)].all(connection, parameters)
    return MemberList(name, rows[:size], page, len(rows) > size)


def member_list(session: Session, user: User, name: str, page: int = 1) -> MemberList:
    """A page of one of the member's lists (``name``: a key of ``_LISTS``), newest first. The
    lists run as ``Prepared`` statements on the session's connection: through SQLAlchemy's
    execution, its bookkeeping cost more than running them (docs/performance.md, "Instructions
    per request")."""
    if name not in _LISTS:
        raise NotFound("There is no such list.")
    if not 1 <= page <= MAX_LIST_PAGE:
        raise ValidationError(f"The page must be between 1 and {MAX_LIST_PAGE}.", code="invalid_page")
    return _page(connection_of(session), user, name, page, LIST_PAGE_SIZE)


def member_list_after(session: Session, user: User, name: str, window: Window) -> Sequence[Any]:
    """The rows of one of the member's lists after ``window.after`` (keyset pages, for the API's
    cursors: ``marketplace.keyset``), newest first, one more than ``window.limit``."""
    if name not in _WHERE:
        raise NotFound("There is no such list.")
    query = _WHERE[name][bool(user.email_verified)]
    statement = seek(query.rows, query.created_at, query.row_id, window, descending=True)
    return session.execute(statement, {"member_id": user.id, "address": user.email}).all()


def dashboard(session: Session, user: User) -> Dashboard:
    """The newest ``DASHBOARD_PREVIEW`` rows of each of the member's lists, in one statement."""
    parameters = {"member_id": user.id, "address": user.email, "limit": DASHBOARD_PREVIEW + 1}
    found: dict[str, list[Any]] = defaultdict(list)
    connection, verified = connection_of(session), bool(user.email_verified)
    for row in _DASHBOARD[verified].fetchall(connection, parameters):
        name = row[-1]
        found[name].append(_LISTS[name][verified].row_of(connection.dialect, row[_SLICE_OF[_KIND_OF_LIST[name]]]))

    def newest(name: str) -> MemberList:
        # A union keeps no order of its parts' rows: each list is put back in its own.
        rows = sorted(found[name], key=lambda row: (row.created_at, row.id), reverse=True)
        return MemberList(name, rows[:DASHBOARD_PREVIEW], 1, len(rows) > DASHBOARD_PREVIEW)

    return Dashboard(
        received=newest("received"),
        sent=newest("sent"),
        places=newest("places"),
        introductions_made=newest("introductions-made"),
        introductions_received=newest("introductions-received"),
    )
