"""Web forms (flask-wtf: every form carries and checks a CSRF token)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from . import passwords, users


class HtmlForm(FlaskForm):
    """A form filled only from a submitted HTML form's text fields (urlencoded or multipart body). Flask-WTF
    would also fill it from a JSON body, and a JSON value other than an object or a list of pairs made that
    fail with a 500; these pages are not a JSON API, so a JSON body is simply no form input (the CSRF check
    still runs). No page takes a file either: a file part is no form input (a text field's rule cannot read it)."""

    class Meta:
        def wrap_formdata(self, form, formdata):
            from flask import request
            from flask_wtf.form import _Auto, _is_submitted
            if formdata is _Auto:
                if not _is_submitted():
                    return None
                return request.form
            return formdata


def _rule(problem):
    def check(form, field):
        message = problem(field.data)
        if message:
            raise ValidationError(message)
    return check


def _password_rule(form, field):
    message = passwords.password_problem(field.data, username=users.normalize_username(form.username.data),
                                         email=users.normalize_email(form.email.data))
    if message:
        raise ValidationError(message)


def _new_password_fields(name: str, label: str, rule):
    """A new password and its confirmation: the same hints and rules on registration and password change."""
    noun = label[0].lower() + label[1:]
    password = PasswordField(label, validators=[DataRequired(f"Choose a {noun}."), rule],
                             render_kw={"autocomplete": "new-password", "minlength": passwords.MIN_LENGTH,
                                        "maxlength": passwords.MAX_LENGTH},
                             description=f"At least {passwords.MIN_LENGTH} characters. A few unrelated words make "
                                         "a strong, memorable password.")
    confirm = PasswordField(f"Repeat {noun}",
                            validators=[DataRequired(f"Repeat your {noun}."),
                                        EqualTo(name, "The two passwords do not match.")],
                            render_kw={"autocomplete": "new-password"})
    return password, confirm


class RegisterForm(HtmlForm):
    name = StringField("Full name", validators=[DataRequired("Enter your name."), Length(max=users.NAME_MAX),
                                                _rule(users.name_problem)],
                       render_kw={"autocomplete": "name"})
    username = StringField("Username", validators=[DataRequired("Choose a username."), _rule(users.username_problem)],
                           render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
                           description="3 to 32 characters: letters, digits, dots, dashes or underscores, starting with a letter or digit.")
    email = StringField("Email address", validators=[DataRequired("Enter your email address."),
                                                     _rule(users.email_problem)],
                        render_kw={"autocomplete": "email", "type": "email"})
    phone = StringField("Phone number (optional)", validators=[Optional(), _rule(users.phone_problem)],
                        render_kw={"autocomplete": "tel", "type": "tel"})
    password, confirm = _new_password_fields("password", "Password", _password_rule)
    submit = SubmitField("Create account")


class LoginForm(HtmlForm):
    username = StringField("Username or email", validators=[DataRequired("Enter your username or email."),
                                                            Length(max=254)],
                           render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false",
                                      "autofocus": True})
    password = PasswordField("Password", validators=[DataRequired("Enter your password."),
                                                     Length(max=4 * passwords.MAX_LENGTH)],
                             render_kw={"autocomplete": "current-password"})
    submit = SubmitField("Sign in")


def _new_password_rule(form, field):
    user = form.user or {}
    message = passwords.password_problem(field.data, username=users.normalize_username(user.get("username")),
                                         email=users.normalize_email(user.get("email")))
    if message:
        raise ValidationError(message)


class ChangePasswordForm(HtmlForm):
    """Change password on the account page; ``user`` is the signed-in account (for the NIST rules)."""
    current_password = PasswordField("Current password",
                                     validators=[DataRequired("Enter your current password."),
                                                 Length(max=4 * passwords.MAX_LENGTH)],
                                     render_kw={"autocomplete": "current-password", "autofocus": True})
    new_password, confirm = _new_password_fields("new_password", "New password", _new_password_rule)
    submit = SubmitField("Change password")

    def __init__(self, *args, user: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user


class SignOutForm(HtmlForm):
    submit = SubmitField("Sign out")


class SignOutEverywhereForm(HtmlForm):
    """Ends every session of the account (this one too) and every token its apps hold."""
    submit = SubmitField("Sign out everywhere")


class ForgotPasswordForm(HtmlForm):
    login = StringField("Username or email", validators=[DataRequired("Enter your username or email."),
                                                         Length(max=254)],
                        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false",
                                   "autofocus": True})
    submit = SubmitField("Send me a reset link")


class ResetPasswordForm(HtmlForm):
    """A new password from an emailed link; ``user`` is the link's account (for the NIST rules)."""
    new_password, confirm = _new_password_fields("new_password", "New password", _new_password_rule)
    submit = SubmitField("Set new password")

    def __init__(self, *args, user: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user


class UndoEmailChangeForm(ResetPasswordForm):
    """Undo an email change from the link mailed to the previous address: a new password is part of it (the
    change's author may know the current one); ``user`` is the account with that address (the NIST rules)."""
    submit = SubmitField("Restore my address and set the password")


class ChangeEmailForm(HtmlForm):
    email = StringField("New email address", validators=[DataRequired("Enter your new email address."),
                                                         _rule(users.email_problem)],
                        render_kw={"autocomplete": "email", "type": "email", "autofocus": True})
    current_password = PasswordField("Current password",
                                     validators=[DataRequired("Enter your current password."),
                                                 Length(max=4 * passwords.MAX_LENGTH)],
                                     render_kw={"autocomplete": "current-password"})
    submit = SubmitField("Change email")


class ConfirmLinkForm(HtmlForm):
    submit = SubmitField("Confirm")


class ResendVerificationForm(HtmlForm):
    submit = SubmitField("Send the link again")
