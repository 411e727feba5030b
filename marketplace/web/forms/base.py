"""The base of every form: each text field goes through ``marketplace.text``, added here once so a
new field cannot be forgotten."""

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, TextAreaField
from wtforms.validators import ValidationError as FieldError

from marketplace import text
from marketplace.errors import ValidationError


class VisibleText:
    """Normalises a field's text to NFC and refuses what ``marketplace.text`` refuses, naming the
    field; a text area takes line breaks, any other text field one line."""

    def __init__(self, multi_line: bool):
        self.check = text.multi_line if multi_line else text.single_line

    def __call__(self, form, field) -> None:
        if not isinstance(field.data, str):
            return
        try:
            field.data = self.check(field.data, str(field.label.text))
        except ValidationError as error:
            raise FieldError(error.message) from None


class MarketplaceForm(FlaskForm):
    """A ``FlaskForm`` whose text fields are checked by ``VisibleText`` before their own
    validators. Passwords are left as typed: they are hashed, never shown."""

    class Meta(FlaskForm.Meta):
        def bind_field(self, form, unbound_field, options):
            field = super().bind_field(form, unbound_field, options)
            if isinstance(field, StringField) and not isinstance(field, PasswordField):
                field.validators = [VisibleText(isinstance(field, TextAreaField)), *field.validators]
            return field
