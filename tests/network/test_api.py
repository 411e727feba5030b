"""The network over the JSON API: connections and requests, contact cards, degree counts and a
problem's reach, each with its authorization (401 without a token, 404 or 403 for what belongs to
someone else, 422 for a malformed body)."""

import pytest

from marketplace.network import service
from marketplace.network.service import CardData
from tests.builders import connection as connect

ENDPOINTS = [
    ("get", "/me/connections"),
    ("get", "/me/connections/requests"),
    ("post", "/connections"),
    ("post", "/connections/requests/1/confirm"),
    ("post", "/connections/requests/1/decline"),
    ("post", "/connections/requests/1/cancel"),
    ("delete", "/connections/1"),
    ("get", "/me/network"),
    ("get", "/me/cards"),
    ("post", "/me/cards"),
    ("get", "/me/cards/1"),
    ("put", "/me/cards/1"),
    ("delete", "/me/cards/1"),
    ("get", "/problems/1/reach"),
]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_every_endpoint_needs_a_token(client, method, url):
    response = getattr(client, method)("/api/v1" + url, json={})
    assert response.status_code == 401 and response.json["error"]["code"] == "unauthorized"


def test_openapi_documents_the_network(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert {"/api/v1/me/connections", "/api/v1/me/cards", "/api/v1/problems/{problem_id}/reach"} <= set(paths)


def test_connection_lifecycle_over_the_api(api, world):
    ann, bob, cleo = api(world.ann), api(world.bob), api(world.cleo)
    response = ann.post("/connections", {"user_id": world.bob.id, "note": "Worked together at Acme"})
    assert response.status_code == 201
    request = response.json
    assert request["status"] == "pending" and request["to_user"] == {"user_id": world.bob.id, "name": "Bob Martins"}
    assert ann.get("/me/connections").json["items"] == []
    assert [r["id"] for r in bob.get("/me/connections/requests").json["incoming"]] == [request["id"]]
    assert cleo.get("/me/connections/requests").json == {"incoming": [], "outgoing": []}

    assert cleo.post(f"/connections/requests/{request['id']}/confirm").status_code == 404
    assert ann.post(f"/connections/requests/{request['id']}/confirm").status_code == 403
    confirmed = bob.post(f"/connections/requests/{request['id']}/confirm")
    assert confirmed.status_code == 200 and confirmed.json["status"] == "confirmed"
    assert bob.post(f"/connections/requests/{request['id']}/decline").status_code == 409

    (item,) = ann.get("/me/connections").json["items"]
    assert (item["user_id"], item["name"], item["note"]) == (world.bob.id, "Bob Martins", "Worked together at Acme")
    assert ann.get("/me/network").json == {"first": 1, "second": 0, "third": 0}

    assert cleo.client.delete(f"/api/v1/connections/{world.bob.id}", headers=cleo._headers()).status_code == 404
    assert ann.client.delete(f"/api/v1/connections/{world.bob.id}", headers=ann._headers()).status_code == 204
    assert bob.get("/me/connections").json["items"] == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),
        ({"user_id": "2", "note": "x"}, 422),
        ({"user_id": 2**70, "note": "x"}, 422),
        ({"user_id": 999_999, "note": "Friends"}, 404),
        ({"user_id": None, "note": "Friends"}, 422),
    ],
)
def test_malformed_connection_requests(api, world, body, status):
    response = api(world.ann).post("/connections", body)
    assert response.status_code == status and set(response.json["error"]) == {"code", "message"}


def test_cards_over_the_api_are_private(api, world):
    ann, bob = api(world.ann), api(world.bob)
    created = ann.post(
        "/me/cards",
        {"name": "José Álvarez", "email": "jose@example.net", "tags": ["PostgreSQL"], "connected_on": "2024-03-14"},
    )
    assert created.status_code == 201
    card = created.json
    assert (card["tags"], card["source"], card["connected_on"]) == (["postgresql"], "manual", "2024-03-14")
    assert [c["name"] for c in ann.get("/me/cards?q=jose").json["items"]] == ["José Álvarez"]
    assert ann.get("/me/cards?tag=postgresql").json["next_page"] is None
    assert bob.get("/me/cards").json["items"] == []

    url = f"/me/cards/{card['id']}"
    assert bob.get(url).status_code == 404
    assert bob.put(url, {"name": "Taken"}).status_code == 404
    assert bob.client.delete("/api/v1" + url, headers=bob._headers()).status_code == 404
    assert ann.put(url, {"name": "José Á.", "email": "jose@example.net"}).json["name"] == "José Á."
    assert ann.post("/me/cards", {"name": "Dup", "email": "JOSE@example.net"}).status_code == 409
    assert ann.post("/me/cards", {"name": "Bad", "linkedin_url": "javascript:alert(1)"}).status_code == 422
    assert ann.post("/me/cards", {"email": "x@example.com"}).status_code == 422
    assert ann.get("/me/cards?page=0").status_code == 422
    assert ann.client.delete("/api/v1" + url, headers=ann._headers()).status_code == 204
    assert ann.get(url).status_code == 404


def test_problem_reach_over_the_api(session, api, world, open_problem):
    """Ann → Bob → Cleo (keeps her name off chains) → Dev (PostgreSQL)."""
    problem = open_problem()
    private = open_problem(visibility="private")
    world.cleo.show_name_on_chains = False
    session.commit()
    for a, b in [(world.ann, world.bob), (world.bob, world.cleo), (world.cleo, world.dev)]:
        connect(session, a, b)
    service.request_connection(session, world.ann, user_id=world.dev.id, note="Pending only")
    service.create_card(session, world.ann, CardData(name="Dev", email="dev@example.com"))
    session.commit()

    ann = api(world.ann)
    response = ann.get(f"/problems/{problem.id}/reach?k=5")
    assert response.status_code == 200
    assert response.json == {
        "items": [
            {
                "user_id": world.dev.id,
                "name": "Dev Sharma",
                "hops": 3,
                "path": [
                    {"user_id": world.ann.id, "name": "Ann Li"},
                    {"user_id": world.bob.id, "name": "Bob Martins"},
                    {"user_id": None, "name": "a member"},
                    {"user_id": world.dev.id, "name": "Dev Sharma"},
                ],
                "mutual": 0,
                "track_record": 0,
            }
        ]
    }
    assert ann.get("/me/network").json == {"first": 1, "second": 1, "third": 1}
    assert ann.get(f"/problems/{problem.id}/reach?k=0").status_code == 422
    assert ann.get(f"/problems/{problem.id}/reach?k=abc").status_code == 422
    assert ann.get(f"/problems/{private.id}/reach").status_code == 404
    assert ann.get("/problems/999999/reach").status_code == 404
