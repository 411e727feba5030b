from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, EqualTo, Length

from marketplace.accounts.password_rules import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from marketplace.web.forms.base import MarketplaceForm


class SignupForm(MarketplaceForm):
    name = StringField("Your name", validators=[DataRequired(), Length(max=120)])
    email = EmailField("E-mail", validators=[DataRequired(), Email()])
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)]
    )
    submit = SubmitField("Create my account")


class LoginForm(MarketplaceForm):
    email = EmailField("E-mail", validators=[DataRequired(), Email()])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Keep me logged in")
    submit = SubmitField("Log in")


class ResetRequestForm(MarketplaceForm):
    email = EmailField("E-mail", validators=[DataRequired(), Email()])
    submit = SubmitField("Send me a reset link")


class ResetPasswordForm(MarketplaceForm):
    password = PasswordField(
        "New password", validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)]
    )
    confirm = PasswordField("Repeat it", validators=[DataRequired(), EqualTo("password", "The two passwords differ.")])
    submit = SubmitField("Set my password")


class ProfileForm(MarketplaceForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    headline = StringField("Headline", validators=[Length(max=200)], description="What you do, in a line.")
    skills = StringField("Skills", description="Comma-separated, e.g. PostgreSQL, replication, Python.")
    show_name_on_chains = BooleanField(
        "Show my name on referral chains",
        description="If unticked, companies and people beyond your direct contacts see “Anonymous member”. "
        "You are paid either way.",
    )
    submit = SubmitField("Save profile")


class PasswordChangeForm(MarketplaceForm):
    current_password = PasswordField("Current password", validators=[DataRequired()])
    new_password = PasswordField(
        "New password", validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)]
    )
    confirm_password = PasswordField(
        "Repeat it", validators=[DataRequired(), EqualTo("new_password", "The two passwords differ.")]
    )
    revoke_tokens = BooleanField("Also revoke my API tokens")
    submit = SubmitField("Change password")


class LogoutEverywhereForm(MarketplaceForm):
    revoke_all_tokens = BooleanField(
        "Also revoke my API tokens",
        description="Every browser logged in to this account is logged out, this one too.",
    )
    submit = SubmitField("Log out everywhere")


class TokenForm(MarketplaceForm):
    name = StringField("Token name", validators=[DataRequired(), Length(max=80)], default="API token")
    submit = SubmitField("Create token")


class CompanyForm(MarketplaceForm):
    name = StringField("Company name", validators=[DataRequired(), Length(min=2, max=120)])
    description = TextAreaField("About the company", validators=[Length(max=2000)])
    submit = SubmitField("Create company")


class InviteForm(MarketplaceForm):
    email = EmailField("E-mail", validators=[DataRequired(), Email()])
    role = SelectField("Role", choices=[SelectChoice("employee", "Employee"), SelectChoice("admin", "Admin")])
    submit = SubmitField("Send invitation")


class EmailChangeForm(MarketplaceForm):
    email = EmailField("New e-mail address", validators=[DataRequired(), Email()])
    # Not ``current_password``: the password form on the same page has a field of that name.
    password = PasswordField("Current password", validators=[DataRequired()])
    submit = SubmitField("Change e-mail address")
