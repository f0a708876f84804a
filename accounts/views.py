from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.forms import SignUpForm


def sign_up(request):
    """An account to submit prompts to streams (parties never need one)."""
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        login(request, form.save())
        after = request.GET.get("next", "")
        # Only back to a page of this site, as Django's own login view does.
        safe = url_has_allowed_host_and_scheme(
            after, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        return redirect(after if safe else "/")
    return render(request, "registration/signup.html", {"form": form})
