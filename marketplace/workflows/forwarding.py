"""Forwarding a problem to one of your connections, from the reach panel of the problem page."""

from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.accounts.service import role_in
from marketplace.errors import NotFound
from marketplace.network.service import is_connected
from marketplace.referrals import chains, visibility
from marketplace.referrals.models import Referral


def forward_to_connection(session: Session, actor: User, problem_id: int, peer_id: int) -> Referral:
    """The one-click forward of the reach panel, to one of the actor's connections. A member who
    found the problem on the board picks it up first, so the forward has a place to hang from."""
    problem = visibility.get_visible(session, actor, problem_id)
    if not is_connected(session, actor.id, peer_id):
        raise NotFound("You are not connected to that member.")
    if chains.place_of(session, actor, problem.id) is None and role_in(session, actor, problem.company_id) is None:
        chains.pick_from_board(session, actor, problem.id)
    return chains.forward(session, actor, problem.id, to_user_id=peer_id)
