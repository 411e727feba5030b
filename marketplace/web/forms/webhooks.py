"""The form that adds a webhook endpoint to a company."""

from wtforms import SelectMultipleField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from marketplace.web.forms.base import MarketplaceForm
from marketplace.webhooks.service import EVENT_TYPES


class EndpointForm(MarketplaceForm):
    url = StringField(
        "URL", validators=[DataRequired(), Length(max=2000)], description="https://… on a public address."
    )
    description = StringField("Description", validators=[Length(max=200)], description="What receives it, for you.")
    event_types = SelectMultipleField(
        "Events",
        choices=[SelectChoice(name, f"{name}: {label}") for name, label in EVENT_TYPES.items()],
        validators=[DataRequired("Choose at least one event type.")],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    submit = SubmitField("Add the endpoint")


class EndpointChangeForm(EndpointForm):
    submit = SubmitField("Save changes")
