"""Customers, and the list/pagination/metadata behaviour shared by every resource."""

import pytest
import stripe


def test_create_retrieve_update(client):
    created = client.v1.customers.create(
        params={"email": "ada@example.test", "name": "Ada", "metadata": {"user_id": "42"}}
    )
    assert created.id.startswith("cus_")
    assert created.object == "customer"
    assert created.livemode is False
    assert isinstance(created.created, int)
    assert client.v1.customers.retrieve(created.id).email == "ada@example.test"

    updated = client.v1.customers.update(
        created.id, params={"name": "Ada L.", "metadata": {"user_id": "", "tier": "gold"}}
    )
    assert updated.name == "Ada L."
    assert updated.metadata.to_dict() == {"tier": "gold"}


def test_update_emits_previous_attributes(client):
    created = client.v1.customers.create(params={"name": "Ada"})
    client.v1.customers.update(created.id, params={"name": "Grace"})
    event = client.v1.events.list(params={"type": "customer.updated"}).data[0]
    assert event.data.object.name == "Grace"
    assert event.data.previous_attributes.to_dict() == {"name": "Ada"}


def test_lists_are_newest_first_and_paginate(client):
    ids = [client.v1.customers.create(params={"name": f"c{i}"}).id for i in range(5)]
    first = client.v1.customers.list(params={"limit": 2})
    assert first.object == "list"
    assert first.url == "/v1/customers"
    assert [c.id for c in first.data] == ids[:-3:-1]
    assert first.has_more is True
    second = client.v1.customers.list(params={"limit": 2, "starting_after": first.data[-1].id})
    assert [c.id for c in second.data] == [ids[2], ids[1]]
    before = client.v1.customers.list(params={"limit": 2, "ending_before": ids[2]})
    assert [c.id for c in before.data] == [ids[4], ids[3]]
    assert [c.id for c in first.auto_paging_iter()] == ids[::-1]


def test_list_limit_is_bounded(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.customers.list(params={"limit": 101})
    assert raised.value.param == "limit"
