"""The admin site: password log-in plus a TOTP code for users who enabled one (django-otp).

A user with a confirmed TOTP device (``django_otp.plugins.otp_totp``, enabled per user by an
admin) must give a current code at the admin log-in; a session that was not verified with the
device (e.g. one opened through ``/api-auth/login/``) does not reach the admin.
"""

from __future__ import annotations

from django.contrib import admin
from django_otp import user_has_device

from .forms import AdminLoginForm


class TrialdeskAdminSite(admin.AdminSite):
    login_form = AdminLoginForm
    login_template = "admin/login_totp.html"

    def has_permission(self, request) -> bool:
        if not super().has_permission(request):
            return False
        user = request.user
        return not self._has_device(request, user) or user.is_verified()

    @staticmethod
    def _has_device(request, user) -> bool:
        """Whether ``user`` has a confirmed device, read once a request (every admin page
        asks twice: the view's guard and the page's navigation), for that user only."""
        known = request.__dict__.get("_trialdesk_has_device")
        if known is None or known[0] != user.pk:
            known = (user.pk, user_has_device(user))
            request._trialdesk_has_device = known
        return known[1]
