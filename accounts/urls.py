from django.contrib.auth.views import LoginView
from django.urls import include, path

from accounts import views
from accounts.forms import SignInForm

urlpatterns = [
    path("signup/", views.sign_up, name="signup"),
    # Before Django's own URLs, so that its login page gets the uncut form.
    path("login/", LoginView.as_view(authentication_form=SignInForm), name="login"),
    path("", include("django.contrib.auth.urls")),
]
