"""Reading the API's OpenAPI document in tests: its operations and the answers they declare."""

from collections.abc import Iterator

METHODS = ("get", "post", "put", "patch", "delete")


def document_of(app) -> dict:
    return app.test_client().get("/api/v1/openapi.json").get_json()


def operations(document: dict) -> Iterator[tuple[str, str, list[dict], dict]]:
    """(method, path, path parameters, operation) of every route in the document; the path
    parameters are declared on the path, shared by its methods."""
    for path, item in document["paths"].items():
        path_parameters = [p for p in item.get("parameters", []) if p["in"] == "path"]
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, path_parameters, operation


def declared_answers(document: dict) -> set[tuple[str, str, int]]:
    """(METHOD, path, status) for every answer the document declares."""
    return {
        (method.upper(), path, int(status))
        for method, path, _, operation in operations(document)
        for status in operation["responses"]
    }
