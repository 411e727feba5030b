"""What every resource module shares: the request context, lists, updates, expansion."""

from dataclasses import dataclass

from .. import events
from ..errors import invalid, not_found
from ..params import Range, Str


@dataclass
class Context:
    """Who is acting (platform or connected account) and on behalf of which request."""

    store: object
    account: str
    base_url: str = ""
    request_id: str | None = None
    idempotency_key: str | None = None

    @property
    def now(self):
        return self.store.now()

    @property
    def is_platform(self):
        return self.account == self.store.platform_id

    def new_id(self, prefix):
        return self.store.new_id(prefix)

    def insert(self, obj, **private):
        return self.store.insert(obj, self.account, **private)

    def get(self, object_id, kind, **options):
        return self.store.get(object_id, self.account, kind, **options)

    def private(self, obj):
        return self.store.meta[obj["id"]]

    def emit(self, event_type, obj, previous=None):
        request = {"id": self.request_id, "idempotency_key": self.idempotency_key}
        return events.emit(
            self.store,
            event_type,
            obj,
            request=request if self.request_id else None,
            previous=previous,
        )

    def acting_as(self, account):
        """The same request seen from another account (e.g. a transfer's destination)."""
        return Context(self.store, account, self.base_url, self.request_id, self.idempotency_key)


def list_object(data, url, has_more=False, **extra):
    return {"object": "list", "data": data, "has_more": has_more, "url": url, **extra}


def paginate(items, params, url):
    limit = params.get("limit") or 10
    if not 1 <= limit <= 100:
        raise invalid("Invalid limit: must be between 1 and 100", param="limit")
    ids = [item["id"] for item in items]
    if params.get("starting_after"):
        start = _position(ids, params, "starting_after") + 1
        end = start + limit
        return list_object(items[start:end], url, end < len(items))
    if params.get("ending_before"):
        end = _position(ids, params, "ending_before")
        start = max(0, end - limit)
        return list_object(items[start:end], url, start > 0)
    return list_object(items[:limit], url, len(items) > limit)


def _position(ids, params, name):
    try:
        return ids.index(params[name])
    except ValueError:
        raise not_found("object", params[name], param=name, status=400) from None


def list_objects(ctx, kind, params, url, filters=(), where=None):
    """A paginated list of ``kind``, filtered by ``created``, by equality on ``filters``
    and by any extra ``where`` predicate."""

    def matches(obj):
        return (
            Range.matches(obj["created"], params.get("created"))
            and all(obj.get(name) == params[name] for name in filters if params.get(name) is not None)
            and (where is None or where(obj))
        )

    return paginate(ctx.store.query(ctx.account, kind, matches), params, url)


def update_object(ctx, obj, params, event_type=None):
    """Apply an update request: metadata merges, other fields replace; emits ``event_type``
    (when the resource has one) if anything changed."""
    before = ctx.store.snapshot(obj)
    for key, value in params.items():
        if key == "expand":
            continue
        if key == "metadata":
            merged = {**obj["metadata"], **(value or {})} if value is not None else {}
            obj["metadata"] = {k: v for k, v in merged.items() if v != ""}
        else:
            obj[key] = value
    diff = events.changes(before, obj)
    if diff and event_type:
        ctx.emit(event_type, obj, previous=diff)
    return obj


def render(store, owner, obj, paths, expanders):
    """A response body: a private copy of ``obj`` with each ``expand[]`` path inlined."""
    body = store.snapshot(obj)
    for path in paths or ():
        _expand(store, owner, body, path.split("."), expanders)
    return body


def _expand(store, owner, node, parts, expanders):
    if not isinstance(node, dict):
        return
    name, rest = parts[0], parts[1:]
    if node.get("object") == "list" and name == "data":
        for item in node["data"]:
            if rest:
                _expand(store, owner, item, rest, expanders)
        return
    value = node.get(name)
    target = store.find(value) if isinstance(value, str) and name != "id" else None
    if (node.get("object"), name) in expanders:
        node[name] = store.snapshot(expanders[(node["object"], name)](store, node))
    elif target is not None and store.owner(value) == owner:
        node[name] = store.snapshot(target)
    elif not (name in node and (value is None or isinstance(value, dict))):
        raise invalid(f"This property cannot be expanded ({name}).", param="expand")
    if rest:
        _expand(store, owner, node[name], rest, expanders)


def _only_id(ids):
    (object_id,) = ids.values()
    return object_id


def add_retrieve(routes, path, kind, **options):
    """Register ``GET path``: the ``kind`` object named by the path's placeholder."""
    routes.get(path, **options)(lambda ctx, params, **ids: ctx.get(_only_id(ids), kind))


def add_list(routes, path, kind, filters=(), **options):
    """Register ``GET path``: ``kind`` objects newest first, paginated, filtered by equality
    on ``filters`` (names, or a dict of name -> spec for non-string filters)."""
    specs = filters if isinstance(filters, dict) else {name: Str() for name in filters}
    routes.get(path, specs, listing=True, **options)(
        lambda ctx, params: list_objects(ctx, kind, params, path, filters=tuple(specs))
    )


def add_update(routes, path, kind, fields, event_type=None, **options):
    """Register ``POST path``: update the named ``kind`` object with ``fields``."""
    routes.post(path, fields, **options)(
        lambda ctx, params, **ids: update_object(ctx, ctx.get(_only_id(ids), kind), params, event_type)
    )
