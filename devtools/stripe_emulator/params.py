"""Form decoding and per-endpoint parameter schemas.

Stripe's v1 API takes ``application/x-www-form-urlencoded`` bodies with bracketed keys
(``metadata[k]``, ``line_items[0][price_data][currency]``, ``expand[]``) and rejects any
parameter it does not know. The schemas below say what each endpoint accepts so that a
typo in the app fails here exactly as it would against Stripe.
"""

import re
from urllib.parse import parse_qsl

from .errors import invalid, missing_param, unknown_param

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def decode_form(text):
    """Turn a form/query string into nested dicts; lists stay index-keyed until a schema asks."""
    root = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        match = _KEY.match(key)
        parts = [match.group(1), *_SEGMENT.findall(match.group(2))] if match else [key]
        node = root
        for depth, part in enumerate(parts):
            if part == "":  # `expand[]`: append at the next free index
                part = str(len(node))
            if depth == len(parts) - 1:
                node[part] = value
                break
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise invalid(f"Invalid hash: {key}", param=key)
            node = child
    return root


def join(path, key):
    return f"{path}[{key}]" if path else str(key)


class Spec:
    """Parses one raw (string or nested dict) value; raises Stripe's error for bad input."""

    def parse(self, value, path):
        raise NotImplementedError


class Str(Spec):
    def parse(self, value, path):
        if not isinstance(value, str):
            raise invalid(f"Invalid string: {path}", param=path)
        return value or None  # Stripe treats an empty string as "unset"


class Enum(Str):
    def __init__(self, *choices):
        self.choices = choices

    def parse(self, value, path):
        value = super().parse(value, path)
        if value is not None and value not in self.choices:
            raise invalid(f"Invalid {path}: must be one of {', '.join(self.choices)}", param=path)
        return value


class Currency(Str):
    """A three-letter ISO code; Stripe answers in lowercase whatever case was sent."""

    def parse(self, value, path):
        value = super().parse(value, path)
        if value is not None and not re.fullmatch(r"[A-Za-z]{3}", value):
            raise invalid(f"Invalid currency: {value}", param=path)
        return value and value.lower()


class Int(Spec):
    def __init__(self, positive=False):
        self.positive = positive

    def parse(self, value, path):
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            number = int(value)
            if not self.positive or number > 0:
                return number
            raise invalid("Invalid positive integer", param=path, code="parameter_invalid_integer")
        if value == "":
            return None
        raise invalid(f"Invalid integer: {value}", param=path, code="parameter_invalid_integer")


class Bool(Spec):
    def parse(self, value, path):
        if value in ("true", "false"):
            return value == "true"
        raise invalid(f"Invalid boolean: {value}", param=path)


class Metadata(Spec):
    """``metadata[key]=value`` pairs; on update an empty value removes that key and an empty
    ``metadata`` (parsed as None) removes them all."""

    def parse(self, value, path):
        if value == "":
            return None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise invalid("Invalid metadata: must be a hash of string keys and values", param=path)
        if len(value) > 50:
            raise invalid("Metadata can have up to 50 keys", param=path)
        for key, item in value.items():
            if len(key) > 40 or len(item) > 500:
                raise invalid(
                    "Metadata keys are limited to 40 characters and values to 500",
                    param=join(path, key),
                )
        return dict(value)


class ListOf(Spec):
    def __init__(self, item):
        self.item = item

    def parse(self, value, path):
        if value == "":
            return []
        if not isinstance(value, dict) or not all(k.isdigit() for k in value):
            raise invalid(f"Invalid array: {path}", param=path)
        ordered = sorted(value.items(), key=lambda kv: int(kv[0]))
        return [self.item.parse(v, join(path, k)) for k, v in ordered]


class Obj(Spec):
    def __init__(self, fields, required=()):
        self.fields = fields
        self.required = tuple(required)

    def parse(self, value, path=""):
        if not isinstance(value, dict):
            raise invalid(f"Invalid object: {path}", param=path)
        parsed = {}
        for key, raw in value.items():
            spec = self.fields.get(key)
            if spec is None:
                raise unknown_param(join(path, key))
            parsed[key] = spec.parse(raw, join(path, key))
        for key in self.required:
            if parsed.get(key) is None:
                raise missing_param(join(path, key))
        return parsed


class Range(Spec):
    """A timestamp filter: either an exact value or ``{gt, gte, lt, lte}``."""

    bounds = Obj({op: Int() for op in ("gt", "gte", "lt", "lte")})

    def parse(self, value, path):
        if isinstance(value, dict):
            return self.bounds.parse(value, path)
        return {"eq": Int().parse(value, path)}

    @staticmethod
    def matches(number, bounds):
        checks = {
            "eq": lambda x: number == x,
            "gt": lambda x: number > x,
            "gte": lambda x: number >= x,
            "lt": lambda x: number < x,
            "lte": lambda x: number <= x,
        }
        return all(checks[op](x) for op, x in (bounds or {}).items() if x is not None)


PAGINATION = {
    "limit": Int(),
    "starting_after": Str(),
    "ending_before": Str(),
    "created": Range(),
}
