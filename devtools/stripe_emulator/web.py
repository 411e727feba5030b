"""Framework-free request and response values shared by the server, pages and controls."""

import json
from dataclasses import dataclass, field

from .params import decode_form


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: object  # http.client.HTTPMessage: case-insensitive .get()
    body: bytes

    @property
    def base_url(self):
        return f"http://{self.headers.get('Host')}"

    def form(self):
        return decode_form(self.body.decode(errors="replace") if self.method == "POST" else self.query)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict = field(default_factory=dict)

    @classmethod
    def json(cls, status, data, headers=None):
        body = json.dumps(data, indent=2).encode()
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def html(cls, status, text):
        return cls(status, text.encode(), {"Content-Type": "text/html; charset=utf-8"})

    @classmethod
    def redirect(cls, location):
        return cls(303, b"", {"Location": location})
