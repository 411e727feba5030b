"""The problem page's reach panel (``templates/network/_reach.html``): who the viewer, or the
company, can reach with the problem's skills (``workflows.reach.problem_page_reach``).

As the referral tree's section is (``web.tree_picture``), the panel is drawn from a sketch of
what it shows, in plain values, so each process draws it once for each sketch and puts the
request's CSRF token in it: it is drawn again when a result, a name, a connection or who may be
forwarded the problem changes (docs/performance.md, "The tree and the reach panel drawn once for
each state").
"""

from typing import NamedTuple

from flask import render_template, request
from markupsafe import Markup

from marketplace.problems.models import Problem
from marketplace.web.util import rendered_once, token_marked, with_request_token
from marketplace.workflows.reach import ProblemReach, Starter, Via


class ReachSketch(NamedTuple):
    """Everything the panel shows: the panel is drawn from these alone."""

    root: str  # where the app is mounted, under which its links are written
    problem_id: int
    skills: str  # the problem's skills, as the panel names them
    found: int  # how many members the search found
    capped: bool  # the search stopped at its limit: there may be more
    via: tuple[Via, ...]
    starters: tuple[Starter, ...]
    chains: tuple[tuple[str, ...], ...]  # each result's path after the viewer, by name


def reach_panel(problem: Problem, reach: ProblemReach) -> Markup:
    """The panel for ``reach``, found for ``problem``, with this request's CSRF token."""
    sketch = ReachSketch(
        request.script_root,
        problem.id,
        ", ".join(skill.name for skill in problem.skills),
        len(reach.results),
        reach.capped,
        tuple(reach.via),
        tuple(reach.starters),
        tuple(tuple(person.name for person in result.path[1:]) for result in reach.results),
    )
    return with_request_token(_drawn(sketch))


@rendered_once(maxsize=1024)
def _drawn(sketch: ReachSketch) -> Markup:
    return Markup(token_marked(render_template("network/_reach.html", panel=sketch)))
