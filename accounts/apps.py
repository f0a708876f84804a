from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Sign-up beside Django's own sign-in pages: an account submits prompts to streams (a party
    never needs one)."""

    name = "accounts"
