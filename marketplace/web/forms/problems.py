from datetime import UTC, date, datetime, timedelta

from wtforms import DateField, IntegerField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError

from marketplace.errors import ValidationError as DomainValidationError
from marketplace.money import MINOR_DIGITS, major_text, parse_major
from marketplace.problems import splits
from marketplace.problems.service import ProblemInput
from marketplace.web.forms.base import MarketplaceForm


class ProblemForm(MarketplaceForm):
    title = StringField(
        "Title",
        validators=[DataRequired(), Length(min=5, max=200)],
        description="One line an expert would recognise, e.g. “Fix our Postgres replication lag”.",
    )
    description = TextAreaField(
        "Description",
        validators=[DataRequired(), Length(min=20, max=20000)],
        description="Markdown. What is wrong, what you tried, what a good outcome is.",
    )
    skills = StringField(
        "Skills", validators=[DataRequired()], description="Comma-separated, e.g. PostgreSQL, replication."
    )
    bounty = StringField(
        "Bounty", validators=[DataRequired()], description="Paid only when you accept an introduction."
    )
    currency = SelectField("Currency", choices=[SelectChoice(c, c.upper()) for c in MINOR_DIGITS], default="usd")
    split_rule = SelectField(
        "How the bounty is split along the chain",
        choices=[SelectChoice(name, info.label) for name, info in splits.SPLIT_RULES.items()],
        default=splits.DEFAULT_RULE,
    )
    hop_fee_percent = IntegerField(
        "Fee per forwarding link (% of the pool)",
        validators=[Optional(), NumberRange(0, 50)],
        description="Flat fee rule only; default 5%.",
        render_kw={"data-split-rule": "flat_fee_finder_rest"},  # static/problems/split-rule.js
    )
    finder_percent = IntegerField(
        "Finder's share (% of the pool)",
        validators=[Optional(), NumberRange(50, 100)],
        description="Finder-and-first rule only; default 80%.",
        render_kw={"data-split-rule": "finder_and_first"},
    )
    # InputRequired, not DataRequired: 0 is typed data (out of range here, a valid guarantee below),
    # and must be answered with the range, not "This field is required".
    max_depth = IntegerField(
        "Longest chain",
        default=6,
        validators=[InputRequired(), NumberRange(1, 12, message="A chain has from 1 to 12 links.")],
        description="How many people at most, from the first to the one who introduces the expert.",
    )
    guarantee_days = IntegerField(
        "Guarantee period (days)",
        default=30,
        validators=[InputRequired(), NumberRange(0, 365, message="From 0 (paid at once) to 365 days.")],
        description="Shares are held this long; you can report a failed introduction meanwhile.",
    )
    candidate_share_percent = IntegerField(
        "Thank-you share for the expert (% of the bounty)", default=0, validators=[Optional(), NumberRange(0, 50)]
    )
    visibility = SelectField(
        "Visibility",
        choices=[
            SelectChoice("public", "Public: on the board"),
            SelectChoice("private", "Private: only people in your chains"),
        ],
    )
    expires_on = DateField("Closes on", validators=[DataRequired()], default=lambda: date.today() + timedelta(days=60))
    preview = SubmitField("Preview the split")
    save_draft = SubmitField("Save as draft")
    publish = SubmitField("Publish")

    def validate_bounty(self, field):
        try:
            parse_major(field.data, self.currency.data)
        except Exception as error:  # noqa: BLE001 - shown to the user as the field's error
            raise ValidationError(getattr(error, "message", str(error))) from None

    def validate_expires_on(self, field):
        if field.data and field.data <= date.today():
            raise ValidationError("Pick a date in the future.")

    def split_params(self) -> dict[str, int]:
        """The chosen rule's parameters that the form sets (the rule's defaults fill the rest)."""
        params = {}
        if self.split_rule.data == "flat_fee_finder_rest" and self.hop_fee_percent.data is not None:
            params["f_bps"] = self.hop_fee_percent.data * 100
        if self.split_rule.data == "finder_and_first" and self.finder_percent.data is not None:
            params["s_bps"] = self.finder_percent.data * 100
        return params

    def split_preview(self, platform_fee_bps: int) -> list[splits.Settlement]:
        """How the bounty typed so far splits for chains of 1 to the longest chain, from the
        split fields alone (the rest of the form may still be empty); a ``MarketplaceError``
        says what is missing or wrong."""
        for field in (self.hop_fee_percent, self.finder_percent, self.max_depth, self.candidate_share_percent):
            if field.process_errors:
                raise DomainValidationError(f"{field.label.text}: give a whole number.")
        if self.split_rule.data not in splits.SPLIT_RULES or self.currency.data not in MINOR_DIGITS:
            raise DomainValidationError("Choose a currency and a split rule.")
        if not (self.bounty.data or "").strip():
            raise DomainValidationError("Give a bounty to see how it splits.")
        max_depth = min(max(self.max_depth.data or 6, 1), 12)
        return splits.preview(
            parse_major(self.bounty.data, self.currency.data),
            rule=self.split_rule.data,
            params=splits.normalize_params(self.split_rule.data, self.split_params(), max_depth=max_depth),
            platform_fee_bps=platform_fee_bps,
            candidate_share_bps=min(max(self.candidate_share_percent.data or 0, 0), 50) * 100,
            max_links=max_depth,
        )

    def to_input(self) -> ProblemInput:
        params = self.split_params()
        closes = datetime.combine(self.expires_on.data, datetime.max.time().replace(microsecond=0), tzinfo=UTC)
        return ProblemInput(
            title=self.title.data,
            description=self.description.data,
            bounty_amount=parse_major(self.bounty.data, self.currency.data),
            currency=self.currency.data,
            skills=self.skills.data,
            split_rule=self.split_rule.data,
            split_params=params or None,
            max_depth=self.max_depth.data,
            guarantee_days=self.guarantee_days.data or 0,
            visibility=self.visibility.data,
            expires_at=closes,
            candidate_share_bps=(self.candidate_share_percent.data or 0) * 100,
        )

    @classmethod
    def for_problem(cls, problem) -> "ProblemForm":
        form = cls(obj=problem)
        if not form.is_submitted():
            form.bounty.data = major_text(problem.bounty_amount, problem.currency)
            form.skills.data = ", ".join(s.name for s in problem.skills)
            form.visibility.data = problem.visibility.value
            form.expires_on.data = problem.expires_at.date() if problem.expires_at else None
            form.candidate_share_percent.data = problem.candidate_share_bps // 100
            form.hop_fee_percent.data = problem.split_params.get("f_bps", 500) // 100
            form.finder_percent.data = problem.split_params.get("s_bps", 8000) // 100
        return form


class ForwardForm(MarketplaceForm):
    to_email = StringField("Their e-mail", validators=[DataRequired(), Length(max=254)])
    note = TextAreaField(
        "A note for them",
        validators=[Length(max=2000)],
        description="Why you thought of them. They see who it came from.",
    )
    submit = SubmitField("Forward")


class IntroduceForm(MarketplaceForm):
    candidate_email = StringField("The expert's e-mail", validators=[DataRequired(), Length(max=254)])
    candidate_name = StringField("Their name", validators=[Length(max=120)])
    message = TextAreaField(
        "Your introduction",
        validators=[DataRequired(), Length(min=10, max=5000)],
        description="Why they can solve this. They read it first and agree before the company sees them.",
    )
    submit = SubmitField("Ask them to agree")
