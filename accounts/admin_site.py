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
        return not user_has_device(user) or user.is_verified()
