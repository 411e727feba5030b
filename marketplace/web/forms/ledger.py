import secrets

from wtforms import EmailField, HiddenField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length

from marketplace.ledger.disputes import MAX_REASON, MIN_REASON
from marketplace.money import MINOR_DIGITS
from marketplace.web.forms.base import MarketplaceForm


class DonationForm(MarketplaceForm):
    """Pay it forward. ``key`` is drawn when the form is shown, so sending it twice gives once."""

    to_email = EmailField("Give to (a member's e-mail)", validators=[DataRequired(), Email()])
    amount = StringField("Amount", validators=[DataRequired()], description="From what is available to you.")
    currency = SelectField("Currency", choices=[SelectChoice(c, c.upper()) for c in MINOR_DIGITS], default="usd")
    note = StringField("A note for them (optional)", validators=[Length(max=500)])
    key = HiddenField(default=lambda: secrets.token_urlsafe(16), validators=[DataRequired(), Length(max=64)])
    submit = SubmitField("Pass it on")


class DisputeForm(MarketplaceForm):
    reason = TextAreaField(
        "What went wrong?",
        validators=[DataRequired(), Length(min=MIN_REASON, max=MAX_REASON)],
        description="A platform admin reads this and decides; until then nobody is paid.",
    )
    submit = SubmitField("Report a failed introduction")


class DecisionForm(MarketplaceForm):
    note = TextAreaField("Note for the company and the chain", validators=[Length(max=2000)])
