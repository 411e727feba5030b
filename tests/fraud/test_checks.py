"""Each fraud signal fires on a crafted chain and stays quiet on its near miss."""

from datetime import UTC, datetime, timedelta

from marketplace.fraud import checks
from marketplace.fraud.checks import ChainMember, Forward

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def member(id: int, **values) -> ChainMember:
    defaults = {
        "email": f"person{id}@example.com",
        "name": f"Person {id}",
        "email_skeleton": f"person{id}@example.com",
        "created_at": T0 + timedelta(days=id),
    }
    return ChainMember(id=id, **{**defaults, **values})


def signals_of(evidence) -> list[str]:
    return [e.signal for e in evidence]


def test_gmail_addresses_reach_one_mailbox():
    assert checks.normalised_email("Jo.Ann+bounty@GoogleMail.com") == "joann@gmail.com"
    assert checks.normalised_email("jo.ann+x@example.com") == "jo.ann@example.com"
    found = checks.shared_mailbox([member(1, email="jo.ann+a@gmail.com"), member(2, email="joann@gmail.com")])
    assert signals_of(found) == ["shared_mailbox"]


def test_dots_elsewhere_are_different_mailboxes():
    assert checks.shared_mailbox([member(1, email="jo.ann@example.com"), member(2, email="joann@example.com")]) == []


def test_one_bank_account_behind_two_members_and_not_two_banks():
    shared = [member(1, bank_fingerprints=frozenset({"fp1", "fp2"})), member(2, bank_fingerprints=frozenset({"fp2"}))]
    assert signals_of(checks.shared_bank_account(shared)) == ["shared_bank_account"]
    apart = [member(1, bank_fingerprints=frozenset({"fp1"})), member(2, bank_fingerprints=frozenset({"fp3"}))]
    assert checks.shared_bank_account(apart) == []
    assert checks.shared_bank_account([member(1), member(2)]) == []  # no payout account yet


def test_same_ip_within_a_day_and_not_a_day_apart():
    a = member(1, signup_ip="10.0.0.1", signed_up_at=T0)
    near = member(2, signup_ip="10.0.0.1", signed_up_at=T0 + timedelta(hours=23, minutes=59))
    far = member(3, signup_ip="10.0.0.1", signed_up_at=T0 + timedelta(hours=24))
    other_ip = member(4, signup_ip="10.0.0.2", signed_up_at=T0)
    assert signals_of(checks.same_signup_ip([a, near])) == ["same_signup_ip"]
    assert checks.same_signup_ip([a, far]) == []
    assert checks.same_signup_ip([a, other_ip]) == []


def test_three_accounts_within_thirty_minutes():
    run = [member(i, created_at=T0 + timedelta(minutes=15 * i)) for i in range(3)]  # 0, 15, 30
    assert signals_of(checks.account_run(run)) == ["account_run"]


def test_two_accounts_or_a_wider_spread_is_no_run():
    assert checks.account_run([member(i, created_at=T0 + timedelta(minutes=i)) for i in range(2)]) == []
    spread = [member(i, created_at=T0 + timedelta(minutes=15 * i, seconds=i)) for i in range(3)]  # 30:02
    assert checks.account_run(spread) == []


def forward(claimed: int, after: float) -> Forward:
    claimed_at = T0 + timedelta(minutes=claimed)
    return Forward(claimed_at, claimed_at + timedelta(seconds=after))


def test_two_consecutive_quick_forwards():
    found = checks.quick_forwards([forward(0, 60), forward(5, 9.9), forward(6, 3), Forward(T0, None)])
    assert signals_of(found) == ["quick_forwards"]


def test_one_quick_forward_or_ten_seconds_is_no_signal():
    assert checks.quick_forwards([forward(0, 2), forward(5, 60), forward(6, 2)]) == []
    assert checks.quick_forwards([forward(0, 10), forward(5, 10)]) == []


def test_look_alike_addresses_and_names():
    same_skeleton = [member(1, email_skeleton="paypal@example.com"), member(2, email_skeleton="paypal@example.com")]
    assert signals_of(checks.look_alike_members(same_skeleton)) == ["look_alike_address"]
    same_name = [member(1, name="ＡＮＮ  Lee"), member(2, name="ann lee")]  # full-width letters fold to ASCII
    assert signals_of(checks.look_alike_members(same_name)) == ["look_alike_name"]
    assert checks.look_alike_members([member(1, name="Ann Lee"), member(2, name="Anne Lee")]) == []


def test_a_clean_chain_raises_nothing():
    members = [member(i) for i in range(1, 5)]
    assert checks.evidence_for(members, [forward(0, 3600), forward(90, 60)]) == []


def test_one_member_twice_is_not_a_pair():
    assert checks.look_alike_members([member(1), member(1)]) == []
