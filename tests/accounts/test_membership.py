"""A company's owner and admins withdraw invitations and remove members (docs/accounts.md), through
the company page and the API: a withdrawn link stops working, a removed member's rights end at once
while their work stays theirs, the last owner or admin stays, and nobody else may do either."""

import pytest
from sqlalchemy import select

from marketplace.accounts import service as accounts
from marketplace.accounts.models import Invitation, Membership, Role
from marketplace.notifications.models import Notification
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals import chains, introductions
from marketplace.referrals.models import Introduction, Referral
from tests import builders as build
from tests.builders import count


def invitation_to(session, email: str) -> Invitation:
    invitation = session.scalar(select(Invitation).where(Invitation.email == email))
    session.commit()
    return invitation


def role_of(session, user, company_id: int) -> Role | None:
    role = accounts.role_in(session, user, company_id)
    session.commit()
    return role


# Withdrawing an invitation ---------------------------------------------------------------------


def test_a_withdrawn_invitation_link_stops_working_with_a_clear_message(browser, api, session, world, make_user):
    ivy = make_user("Ivy Invitee", "ivy@example.com")
    invitation, token = accounts.invite(session, world.owner, world.company.id, email=ivy.email, role="employee")
    session.commit()
    adam = build.logged_in(browser, world.admin)
    company_page = f"/companies/{world.company.id}"
    withdraw = f"{company_page}/invitations/{invitation.id}/withdraw"
    assert "ivy@example.com" in adam.get(company_page).text and withdraw in adam.get(company_page).text

    done = adam.submit(company_page, action=withdraw)
    assert "The invitation to ivy@example.com is withdrawn; its link no longer works." in done.text
    assert withdraw not in done.text
    assert invitation_to(session, "ivy@example.com").withdrawn_at is not None

    invitee = build.logged_in(browser, ivy)
    assert "Acme Data withdrew this invitation" in invitee.get(f"/invitations/{token}").text
    refused_page = invitee.submit(f"/invitations/{token}")
    assert refused_page.status_code == 409 and "Acme Data withdrew this invitation." in refused_page.text
    refused_api = api(ivy).post(f"/invitations/{token}/accept")
    assert refused_api.status_code == 409 and refused_api.json["error"]["code"] == "invitation_withdrawn"
    again = api(world.admin).delete(f"/companies/{world.company.id}/invitations/{invitation.id}")
    assert again.status_code == 409 and again.json["error"]["code"] == "invitation_withdrawn"
    assert role_of(session, ivy, world.company.id) is None

    _, renewed = accounts.invite(session, world.owner, world.company.id, email=ivy.email, role="employee")
    session.commit()
    assert api(ivy).post(f"/invitations/{renewed}/accept").status_code == 200, "inviting again renews it"


def test_an_invitation_is_withdrawn_over_the_api_and_an_accepted_one_cannot_be(api, session, world, make_user):
    ivy = make_user("Ivy Invitee", "ivy@example.com")
    owner = api(world.owner)
    invited = owner.post(f"/companies/{world.company.id}/members", {"email": "nia@example.com", "role": "admin"})
    _, token = accounts.invite(session, world.owner, world.company.id, email=ivy.email, role="employee")
    accounts.accept_invitation(session, ivy, token)
    session.commit()

    withdrawn = owner.delete(f"/companies/{world.company.id}/invitations/{invited.json['id']}")
    assert withdrawn.status_code == 204
    assert invitation_to(session, "nia@example.com").withdrawn_at is not None
    accepted = owner.delete(f"/companies/{world.company.id}/invitations/{invitation_to(session, ivy.email).id}")
    assert accepted.status_code == 409 and accepted.json["error"]["code"] == "invitation_used"


# Removing a member -----------------------------------------------------------------------------


def test_a_removed_member_loses_their_rights_at_once_and_keeps_their_work(
    browser, api, session, world, open_problem, sent_mail
):
    private = build.problem(session, world.employee, world.company.id, "open", visibility="private")
    shared = chains.forward(session, world.employee, private.id, to_user_id=world.ann.id)
    public = open_problem()
    introduced = introductions.introduce(
        session, world.employee, public.id, candidate_user_id=world.dev.id, message="Dev fixed this for us before."
    )
    session.commit()
    ethan = build.logged_in(browser, world.employee)
    ethan_api = api(world.employee)
    assert ethan.get(f"/problems/{private.id}").status_code == 200
    adam = build.logged_in(browser, world.admin)
    company_page = f"/companies/{world.company.id}"

    done = adam.submit(company_page, action=f"{company_page}/members/{world.employee.id}/remove")

    assert "Ethan Employee is no longer a member of the company." in done.text
    assert role_of(session, world.employee, world.company.id) is None
    assert ethan.get(f"/problems/{private.id}").status_code == 404
    assert ethan.get(company_page).status_code == 404
    assert ethan_api.get(f"/problems/{private.id}").status_code == 404
    assert private.id not in {item["id"] for item in ethan_api.get("/problems").json["items"]}
    assert ethan_api.post(f"/problems/{public.id}/cancel").status_code == 404
    assert (
        ethan_api.post(
            f"/companies/{world.company.id}/members", {"email": "x@example.com", "role": "employee"}
        ).status_code
        == 404
    )

    session.expire_all()
    assert session.get(Problem, private.id).created_by_id == world.employee.id
    assert session.get(Problem, private.id).status == ProblemStatus.OPEN
    assert session.get(Referral, shared.id).sender_id == world.employee.id
    assert session.get(Introduction, introduced.id).introducer_id == world.employee.id
    told = session.scalars(select(Notification).where(Notification.user_id == world.employee.id)).all()
    assert [n.title for n in told if n.kind == "membership_ended"] == ["You are no longer a member of Acme Data"]
    session.commit()
    assert ethan.get(f"/problems/{public.id}").status_code == 200, "public problems stay public"


def test_a_company_keeps_its_last_owner_or_admin(api, browser, session, world):
    adam = api(world.admin)
    olivia = api(world.owner)

    refused_owner = adam.delete(f"/companies/{world.company.id}/members/{world.owner.id}")
    assert refused_owner.status_code == 403 and "owner cannot be removed" in refused_owner.json["error"]["message"]
    assert olivia.delete(f"/companies/{world.company.id}/members/{world.owner.id}").status_code == 204
    last = adam.delete(f"/companies/{world.company.id}/members/{world.admin.id}")
    assert last.status_code == 409 and last.json["error"]["code"] == "last_admin"
    page = build.logged_in(browser, world.admin).submit(
        f"/companies/{world.company.id}", action=f"/companies/{world.company.id}/members/{world.admin.id}/remove"
    )
    assert "A company keeps at least one owner or admin" in page.text
    assert role_of(session, world.admin, world.company.id) == Role.ADMIN


@pytest.mark.parametrize("who", ["employee", "other_admin", "outsider"])
def test_only_the_companys_owner_or_admins_withdraw_invitations_and_remove_members(
    who, api, browser, session, world, make_user
):
    other_owner = make_user("Oscar Other", "oscar@beta.example.com")
    other_admin = make_user("Alba Other", "alba@beta.example.com")
    build.company(session, other_owner, name="Beta Labs", members={other_admin: "admin"})
    invitation, _ = accounts.invite(session, world.owner, world.company.id, email="ivy@example.com", role="employee")
    session.commit()
    actor = {"employee": world.employee, "other_admin": other_admin, "outsider": world.outsider}[who]
    status = 403 if who == "employee" else 404
    memberships = count(session, Membership)

    withdraw = api(actor).delete(f"/companies/{world.company.id}/invitations/{invitation.id}")
    remove = api(actor).delete(f"/companies/{world.company.id}/members/{world.admin.id}")
    page = build.logged_in(browser, actor).submit(
        "/dashboard", action=f"/companies/{world.company.id}/members/{world.admin.id}/remove"
    )

    assert (withdraw.status_code, remove.status_code, page.status_code) == (status, status, status)
    assert count(session, Membership) == memberships
    assert invitation_to(session, "ivy@example.com").withdrawn_at is None


def test_an_admin_removes_employees_but_only_the_owner_removes_admins(api, session, world, make_user):
    second_admin = make_user("Ada Second", "ada@acme.example.com")
    _, token = accounts.invite(session, world.owner, world.company.id, email=second_admin.email, role="admin")
    accounts.accept_invitation(session, second_admin, token)
    session.commit()

    refused = api(world.admin).delete(f"/companies/{world.company.id}/members/{second_admin.id}")
    assert refused.status_code == 403 and refused.json["error"]["message"] == "Only the owner can remove an admin."
    assert api(world.owner).delete(f"/companies/{world.company.id}/members/{second_admin.id}").status_code == 204
    assert role_of(session, second_admin, world.company.id) is None
