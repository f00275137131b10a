"""The server-rendered forms of sign-up, sign-in, passwords and the admin page (Flask-WTF: every one carries a
CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import EqualTo, InputRequired, Length, Optional, Regexp, ValidationError

from ..passwords import PASSWORD_MAX, PASSWORD_MIN
from ..store.schema import USERNAME_MAX

USERNAME_RULE = r"^[A-Za-z0-9._@+-]+$"


def _new_password(label: str = "Password"):
    """A new-password field: PASSWORD_MIN to PASSWORD_MAX characters."""
    return PasswordField(label, validators=[
        InputRequired(), Length(min=PASSWORD_MIN, max=PASSWORD_MAX,
                                message=f"Use {PASSWORD_MIN} to {PASSWORD_MAX} characters.")])


def _confirm(field: str):
    """A field that must repeat `field`."""
    return PasswordField("Repeat it", validators=[InputRequired(), EqualTo(field, message="The two don't match.")])


class SignInForm(FlaskForm):
    """Sign in with a name and password."""

    username = StringField("Email or user name", validators=[InputRequired(), Length(max=USERNAME_MAX)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=PASSWORD_MAX)])


class SignUpForm(FlaskForm):
    """Make an account (an invitation's token rides along when sign-up is by invitation)."""

    username = StringField("Email or user name", validators=[
        InputRequired(), Length(max=USERNAME_MAX),
        Regexp(USERNAME_RULE, message="Letters, digits and . _ @ + - only.")])
    password = _new_password()
    confirm = _confirm("password")
    invite = HiddenField()


class PasswordForm(FlaskForm):
    """Change one's password (ends every other session)."""

    current = PasswordField("Current password", validators=[InputRequired(), Length(max=PASSWORD_MAX)])
    password = _new_password("New password")
    confirm = _confirm("password")


class ResetForm(FlaskForm):
    """Choose a new password through an admin's reset link."""

    password = _new_password("New password")
    confirm = _confirm("password")


class ActionForm(FlaskForm):
    """A button that changes something (sign out, approve, disable…): only its CSRF token is checked."""


def _token_count(form, field) -> None:
    """Empty (the default), or a whole number of tokens from 0 (no limit) upwards."""
    value = (field.data or "").strip().replace(",", "").replace("_", "")
    if value and (not value.isdigit() or int(value) > 10**12):
        raise ValidationError("A whole number of tokens (0 = no limit), or empty for the default.")


class QuotaForm(FlaskForm):
    """An admin's per-user override of USER_DAILY_TOKENS."""

    daily_tokens = StringField("Daily tokens", validators=[Optional(), Length(max=20), _token_count])

    def limit(self) -> int | None:
        """The override as the store keeps it (None: the default)."""
        value = (self.daily_tokens.data or "").strip().replace(",", "").replace("_", "")
        return int(value) if value else None
