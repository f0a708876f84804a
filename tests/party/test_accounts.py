"""Accounts: Django's password validators guard sign-up, `createsuperuser` and the admin, and the
sign-up page shows what they refused and why."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AdminUserCreationForm
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

TOO_SHORT = "This password is too short. It must contain at least 8 characters."
TOO_COMMON = "This password is too common."
NUMERIC = "This password is entirely numeric."
LIKE_USERNAME = "The password is too similar to the username."
STRONG = "lantern over the quiet harbour"


def sign_up(client, username, password):
    return client.post(
        "/accounts/signup/",
        {"username": username, "password1": password, "password2": password},
    )


@pytest.mark.parametrize(
    "username, password, messages",
    [
        ("ann", "123", [TOO_SHORT, TOO_COMMON, NUMERIC]),
        ("ann", "password", [TOO_COMMON]),
        ("marguerite77", "marguerite77", [LIKE_USERNAME]),
        ("ann", "4815162342108", [NUMERIC]),
    ],
)
def test_a_weak_password_is_refused_with_the_validators_reasons(username, password, messages):
    client = Client()
    page = sign_up(client, username, password)
    assert page.status_code == 200  # the form again, not a redirect
    html = page.content.decode()
    for message in messages:
        assert message in html
    assert 'id="id_password2_error" role="alert"' in html
    assert not get_user_model().objects.filter(username=username).exists()
    assert "_auth_user_id" not in client.session


def test_the_sign_up_page_lists_the_password_rules():
    html = Client().get("/accounts/signup/").content.decode()
    # The validators' help texts, under the password field that they describe.
    assert 'id="id_password1_helptext"' in html
    for rule in (
        "Your password must contain at least 8 characters.",
        "Your password can’t be a commonly used password.",
        "Your password can’t be entirely numeric.",
        "Your password can’t be too similar to your other personal information.",
    ):
        assert rule in html


def test_a_strong_password_signs_up_and_is_signed_in():
    client = Client()
    page = sign_up(client, "ann", STRONG)
    assert (page.status_code, page["Location"]) == (302, "/")
    user = get_user_model().objects.get(username="ann")
    assert user.check_password(STRONG)
    assert client.session["_auth_user_id"] == str(user.pk)
    assert "ann" in client.get("/").content.decode()  # the top bar names who is signed in
    client.logout()
    assert client.login(username="ann", password=STRONG)


class TTY(io.StringIO):
    def isatty(self):
        return True


def test_createsuperuser_refuses_a_weak_password_and_asks_again(monkeypatch):
    """Interactive createsuperuser runs the same validators; declining to bypass them asks for
    another password."""
    from django.contrib.auth.management.commands import createsuperuser

    passwords = iter(["123", "123", STRONG, STRONG])
    monkeypatch.setattr(createsuperuser.getpass, "getpass", lambda prompt="": next(passwords))
    answers = []
    monkeypatch.setattr("builtins.input", lambda prompt="": answers.append(prompt) or "n")
    errors = io.StringIO()
    call_command(
        "createsuperuser",
        username="root",
        email="root@example.org",
        interactive=True,
        stdin=TTY(),
        stdout=io.StringIO(),
        stderr=errors,
    )
    for message in (TOO_SHORT, TOO_COMMON, NUMERIC):
        assert message in errors.getvalue()
    assert len(answers) == 1 and "Bypass password validation" in answers[0]
    root = get_user_model().objects.get(username="root")
    assert root.is_superuser and root.check_password(STRONG)


def test_the_admin_refuses_a_weak_password():
    form = AdminUserCreationForm(
        {
            "username": "ann",
            "password1": "password",
            "password2": "password",
            "usable_password": "true",
        }
    )
    assert not form.is_valid()
    assert TOO_COMMON in form.errors["password2"]
