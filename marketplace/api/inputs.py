"""The base of every API input schema: each string it loads goes through ``marketplace.text``,
added here once so a new field cannot be forgotten.

A string field is one line unless declared with ``MULTI_LINE`` metadata (descriptions, notes,
messages); a password is declared ``AS_TYPED`` (it is hashed, never shown). Both show in the
OpenAPI document (``x-multi-line``, ``format: password``), which the tests read. Strings inside
a list or as a dictionary's keys are checked as single lines. Nested schemas check their own
fields.
"""

from collections.abc import Mapping

import marshmallow as ma

from marketplace import text
from marketplace.errors import ValidationError

MULTI_LINE = {"x-multi-line": True}
AS_TYPED = {"format": "password"}


class InputSchema(ma.Schema):
    @ma.pre_load
    def visible_text(self, data, **kwargs):
        """``data`` with its strings in NFC; a validation error per field whose text
        ``marketplace.text`` refuses, naming the field."""
        if not isinstance(data, Mapping):
            return data  # marshmallow refuses it as it would anyway
        cleaned = dict(data) if isinstance(data, dict) else None
        errors = {}
        for name, field in self.load_fields.items():
            key = field.data_key or name
            if key not in data or field.metadata.get("format") == "password":
                continue
            try:
                value = _checked(data[key], field)
            except ValidationError as error:
                errors[key] = [error.message]
                continue
            if cleaned is not None:
                cleaned[key] = value
        if errors:
            raise ma.ValidationError(errors)
        return data if cleaned is None else cleaned


def _checked(value, field: ma.fields.Field):
    """``value`` with each string it holds checked as ``field`` declares; other values as given."""
    if isinstance(value, str) and isinstance(field, ma.fields.String):
        check = text.multi_line if field.metadata.get("x-multi-line") else text.single_line
        return check(value, "This field")
    if isinstance(value, list) and isinstance(field, ma.fields.List):
        return [text.single_line(item, "Each item") if isinstance(item, str) else item for item in value]
    if isinstance(value, dict) and isinstance(field, ma.fields.Dict):
        return {text.single_line(k, "Each key") if isinstance(k, str) else k: v for k, v in value.items()}
    return value
