"""Admin log-in form: the TOTP code is asked only of users who enabled a TOTP device."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django_otp import devices_for_user, user_has_device
from django_otp.admin import OTPAdminAuthenticationForm


class AdminLoginForm(OTPAdminAuthenticationForm):
    """Username and password (django-axes counts failures); then, for users with a confirmed
    device, the one-time code (django-otp). Users without a device leave the code empty."""

    otp_token = forms.CharField(required=False, max_length=16,
                                widget=forms.TextInput(attrs={"autocomplete": "one-time-code"}))

    def clean(self):
        self.cleaned_data = AdminAuthenticationForm.clean(self)
        user = self.get_user()
        if user is not None and user_has_device(user):
            self.clean_otp(user)
        return self.cleaned_data

    def _chosen_device(self, user):
        """The device picked on the form, else the user's only one (the usual case)."""
        device = super()._chosen_device(user)
        if device is None:
            devices = list(devices_for_user(user, confirmed=True, for_verify=True))
            if len(devices) == 1:
                device = devices[0]
        return device
