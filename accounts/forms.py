"""Django's account forms, with fields that never cut a paste: a widget's `maxlength` would cut a
long paste silently, so the limit moves to `data-max-chars`, which lengths.js counts and shows;
the form's own validation still refuses a text past it, saying so."""

from django.contrib.auth.forms import AuthenticationForm, UserCreationForm


class UncutFields:
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            limit = field.widget.attrs.pop("maxlength", None)
            if limit is not None:
                field.widget.attrs["data-max-chars"] = limit


class SignUpForm(UncutFields, UserCreationForm):
    pass


class SignInForm(UncutFields, AuthenticationForm):
    pass
