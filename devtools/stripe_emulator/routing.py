"""Declarative API routes: each handler names its method, path and accepted parameters."""

import re
from dataclasses import dataclass, field

from .errors import invalid
from .params import PAGINATION, ListOf, Obj, Str


@dataclass
class Route:
    method: str
    pattern: re.Pattern
    handler: object
    schema: Obj
    platform_only: bool


@dataclass
class Router:
    routes: list = field(default_factory=list)
    # (object type, field) -> fn(store, obj) for fields Stripe only includes when expanded
    expanders: dict = field(default_factory=dict)

    def route(self, method, path, params=None, *, required=(), listing=False, platform_only=False):
        fields = {**(PAGINATION if listing else {}), **(params or {}), "expand": ListOf(Str())}
        pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")

        def register(handler):
            self.routes.append(Route(method, pattern, handler, Obj(fields, required), platform_only))
            return handler

        return register

    def get(self, path, params=None, **options):
        return self.route("GET", path, params, **options)

    def post(self, path, params=None, **options):
        return self.route("POST", path, params, **options)

    def delete(self, path, params=None, **options):
        return self.route("DELETE", path, params, **options)

    def expander(self, kind, name):
        def register(fn):
            self.expanders[(kind, name)] = fn
            return fn

        return register

    @classmethod
    def combine(cls, *routers):
        combined = cls()
        for router in routers:
            combined.routes.extend(router.routes)
            combined.expanders.update(router.expanders)
        return combined

    def match(self, method, path):
        for route in self.routes:
            found = route.pattern.match(path)
            if found and route.method == method:
                return route, found.groupdict()
        raise invalid(
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
            status=404,
        )
