from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, HiddenField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from marketplace.network.service import MAX_NOTE, CardData
from marketplace.web.forms.base import MarketplaceForm


class ConnectForm(MarketplaceForm):
    email = StringField("Their e-mail", validators=[DataRequired(), Length(max=254)])
    note = StringField(
        "How you know each other",
        validators=[DataRequired(), Length(max=MAX_NOTE)],
        description="They read it when they decide, e.g. “we worked together at Acme”.",
    )
    submit = SubmitField("Ask to connect")


class JoinForm(MarketplaceForm):
    """Invite an address that has no account to join and connect."""

    email = HiddenField(validators=[DataRequired(), Length(max=254)])
    note = HiddenField(validators=[DataRequired(), Length(max=MAX_NOTE)])


class SuggestionForm(MarketplaceForm):
    """Connect with a contact who turned out to be a member."""

    note = StringField("How you know each other", validators=[DataRequired(), Length(max=MAX_NOTE)])
    submit = SubmitField("Connect")


class CardForm(MarketplaceForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    email = StringField("E-mail", validators=[Optional(), Length(max=254)])
    company = StringField("Company", validators=[Length(max=200)])
    position = StringField("Position", validators=[Length(max=200)])
    tags = StringField("Tags", description="Comma-separated, e.g. postgresql, former colleague.")
    linkedin_url = StringField("LinkedIn address", validators=[Optional(), Length(max=500)])
    connected_on = DateField("Known since", validators=[Optional()])
    notes = TextAreaField("Notes", validators=[Length(max=5000)], description="Only you see this card.")
    submit = SubmitField("Save")

    def to_data(self, other_emails: list[str] | None = None) -> CardData:
        return CardData(
            name=self.name.data,
            email=self.email.data,
            other_emails=other_emails or [],
            company=self.company.data,
            position=self.position.data,
            tags=(self.tags.data or "").split(","),
            notes=self.notes.data,
            linkedin_url=self.linkedin_url.data,
            connected_on=self.connected_on.data,
        )

    @classmethod
    def for_card(cls, card) -> "CardForm":
        form = cls(obj=card)
        if not form.is_submitted():
            form.tags.data = ", ".join(card.tag_list)
        return form


class ImportForm(MarketplaceForm):
    file = FileField(
        "LinkedIn Connections.csv or a vCard (.vcf) file",
        validators=[FileRequired()],
        description="You see what will be added, merged or skipped before anything is imported.",
    )
    submit = SubmitField("Preview")
