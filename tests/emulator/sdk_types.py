"""Check JSON objects against the typed resource classes of the installed stripe-python.

Each resource class annotates its fields at class level (generated from Stripe's OpenAPI
spec): a field whose type is not ``Optional`` is always present; nested ``StripeObject``
subclasses describe nested objects; ``Literal`` lists the allowed strings.
"""

import importlib
import sys
import types
import typing

import stripe
from stripe._object_classes import OBJECT_CLASSES
from stripe._stripe_object import StripeObject

_HINTS = {}


def resource_class(object_name):
    module, name = OBJECT_CLASSES[object_name]
    return getattr(importlib.import_module(module), name)


def _annotations(cls):
    """{field: type} of a class and its StripeObject bases; unresolvable names are Any."""
    if cls not in _HINTS:
        hints = {}
        for klass in reversed(cls.__mro__):
            if not (isinstance(klass, type) and issubclass(klass, StripeObject)) or klass is StripeObject:
                continue
            namespace = {**vars(stripe), **vars(sys.modules[klass.__module__]), **vars(klass)}
            for field, annotation in vars(klass).get("__annotations__", {}).items():
                if field.startswith("_") or typing.get_origin(annotation) is typing.ClassVar:
                    continue
                hints[field] = _resolve(annotation, namespace)
        _HINTS[cls] = hints
    return _HINTS[cls]


def _resolve(annotation, namespace):
    if isinstance(annotation, str):
        annotation = typing.ForwardRef(annotation)
    try:
        return typing._eval_type(annotation, namespace, namespace)
    except Exception:  # a name only imported for type checking: keep Optional-ness
        return typing.Any | None if str(annotation).startswith(("typing.Optional", "Optional")) else typing.Any


def _optional(tp):
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def check(value, tp, path="$"):
    """Problems of ``value`` against type ``tp``, as a list of strings (empty: conforms)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is typing.Any or isinstance(tp, typing.TypeVar):
        return []
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return []
        attempts = [check(value, arm, path) for arm in args if arm is not type(None)]
        return [] if any(not problems for problems in attempts) else min(attempts, key=len)
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} is not one of {list(args)}"]
    if value is None:
        return [f"{path}: null where {tp} is required"]
    if origin in (list, list):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        return [p for i, item in enumerate(value) for p in check(item, args[0] if args else typing.Any, f"{path}[{i}]")]
    if origin in (dict, dict):
        return [] if isinstance(value, dict) else [f"{path}: expected an object"]
    if tp is bool:
        return [] if isinstance(value, bool) else [f"{path}: expected a boolean, got {value!r}"]
    if tp is int:
        return (
            []
            if isinstance(value, int) and not isinstance(value, bool)
            else [f"{path}: expected an integer, got {value!r}"]
        )
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected a number, got {value!r}"]
    if tp is str:
        return [] if isinstance(value, str) else [f"{path}: expected a string, got {value!r}"]
    if isinstance(origin, type) and issubclass(origin, stripe.ListObject) or tp is stripe.ListObject:
        item = args[0] if args else typing.Any
        if not isinstance(value, dict) or value.get("object") != "list":
            return [f"{path}: expected a list object"]
        return [p for i, obj in enumerate(value.get("data", [])) for p in check(obj, item, f"{path}.data[{i}]")]
    if isinstance(tp, type) and issubclass(tp, StripeObject):
        if not isinstance(value, dict):
            return [f"{path}: expected a {tp.__name__} object, got {value!r}"]
        problems = []
        for field, field_type in _annotations(tp).items():
            if field not in value:
                if not _optional(field_type):
                    problems.append(f"{path}.{field}: required field missing")
                continue
            problems += check(value[field], field_type, f"{path}.{field}")
        return problems
    return []


def check_object(obj, path="$"):
    """Problems of an API object (by its ``object`` name) or of a list of them."""
    if obj.get("object") == "list":
        return [p for i, item in enumerate(obj["data"]) for p in check_object(item, f"{path}.data[{i}]")]
    if obj.get("object") not in OBJECT_CLASSES:
        return [f"{path}: unknown object type {obj.get('object')!r}"]
    return check(obj, resource_class(obj["object"]), f"{path}<{obj['object']}>")
