"""The whole referral workflow over the JSON API: a company, three chain members and a candidate."""

from sqlalchemy import select

from marketplace.referrals.models import Introduction, Referral
from marketplace.workflows import funding


def test_company_posts_chain_forwards_candidate_consents_company_accepts(api, world, sent_mail, session):
    anonymous = api()
    owner, ann, bob, cleo, dev = (api(u) for u in (world.owner, world.ann, world.bob, world.cleo, world.dev))

    created = owner.post(
        "/problems",
        {
            "company_id": world.company.id,
            "title": "Fix our Postgres replication lag",
            "description": "Replicas fall minutes behind at peak hours; we need an expert.",
            "skills": ["Postgres", "replication"],
            "bounty": {"amount": 200_000, "currency": "usd"},
            "split_rule": "flat_fee_finder_rest",
            "visibility": "public",
        },
    )
    assert created.status_code == 201, created.json
    problem = created.json
    assert problem["status"] == "awaiting_payment"
    assert problem["skills"] == ["postgresql", "replication"]
    assert [len(row["shares"]) for row in problem["payout_preview"]] == [1, 2, 3, 4, 5, 6]

    # Not open yet: nobody can start a chain.
    assert ann.post(f"/problems/{problem['id']}/pick").status_code == 409

    funding.fund_problem(session, problem["id"])
    session.commit()

    listed = anonymous.get("/problems?q=replication").json
    assert [item["id"] for item in listed["items"]] == [problem["id"]]

    picked = ann.post(f"/problems/{problem['id']}/pick")
    assert picked.status_code == 201, picked.get_json()
    assert picked.json["chain"] == [{"position": 1, "user_id": world.ann.id, "name": "Ann Li"}]

    to_bob = ann.post(f"/problems/{problem['id']}/referrals", {"to_email": "bob@example.com", "note": "You know DBAs"})
    assert to_bob.status_code == 201
    assert to_bob.json["depth"] == 2 and to_bob.json["url"].endswith("/r/" + to_bob.json["token"])
    assert to_bob.json["token"] in sent_mail.to("bob@example.com")[-1].get_body(("plain",)).get_content()

    claimed = bob.post(f"/referrals/{to_bob.json['token']}/claim")
    assert claimed.status_code == 200
    assert [link["user_id"] for link in claimed.json["chain"]] == [world.ann.id, world.bob.id]

    to_cleo = bob.post(f"/problems/{problem['id']}/referrals", {"to_user_id": world.cleo.id})
    assert cleo.post(f"/referrals/{to_cleo.json['token']}/claim").status_code == 200

    intro = cleo.post(
        f"/problems/{problem['id']}/introductions",
        {
            "candidate_email": "dev@example.com",
            "candidate_name": "Dev Sharma",
            "message": "Dev rebuilt replication for a 5 TB cluster.",
        },
    )
    assert intro.status_code == 201 and intro.json["status"] == "awaiting_candidate"
    assert "/i/" in sent_mail.to("dev@example.com")[-1].get_body(("plain",)).get_content()

    # Before consent the company sees that there is a candidate, not who it is.
    listed = owner.get(f"/problems/{problem['id']}/introductions").json
    assert listed[0]["candidate"] is None

    consent = dev.post(f"/introductions/{intro.json['id']}/consent", {"accept": True})
    assert consent.status_code == 200 and consent.json["status"] == "proposed"
    listed = owner.get(f"/problems/{problem['id']}/introductions").json
    assert listed[0]["candidate"]["email"] == "dev@example.com"

    accepted = owner.post(f"/introductions/{intro.json['id']}/accept")
    assert accepted.status_code == 200, accepted.json
    settlement = accepted.json["settlement"]
    assert accepted.json["status"] == "accepted"
    assert settlement["currency"] == "usd"
    assert [(s["user_id"], s["position"]) for s in settlement["shares"]] == [
        (world.ann.id, 1),
        (world.bob.id, 2),
        (world.cleo.id, 3),
    ]
    total = sum(s["amount"] for s in settlement["shares"]) + settlement["platform_fee"] + settlement["remainder"]
    assert total + settlement["candidate_share"] == 200_000
    assert settlement["platform_fee"] == 20_000

    assert owner.post(f"/introductions/{intro.json['id']}/accept").status_code == 409
    assert owner.get(f"/problems/{problem['id']}").json["status"] == "in_guarantee"

    tree = owner.get(f"/problems/{problem['id']}/tree").json
    assert tree["roots"][0]["member"] == "Ann Li"
    assert tree["roots"][0]["children"][0]["children"][0]["member"] == "Cleo Duarte"

    assert session.scalar(select(Introduction).where(Introduction.id == intro.json["id"])).status.value == "accepted"
    assert len(session.scalars(select(Referral)).all()) == 3
