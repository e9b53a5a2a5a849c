"""The admin site: the accounts log-in (password plus TOTP) and the trial dashboards.

The dashboards read every domain app, so they are wired here, at the top, and not in
``trials.admin``; their URL names stay ``admin:trials_trial_dashboard(s)``.
"""

from __future__ import annotations

from django.urls import path

from accounts.admin_site import TrialdeskAdminSite


class AdminSite(TrialdeskAdminSite):
    site_header = "trialdesk EDC"
    site_title = "trialdesk"
    index_title = "Trials, subjects, visits and safety"

    def each_context(self, request):
        from exports.services import can_export

        return {**super().each_context(request), "may_export": can_export(request.user)}

    def get_urls(self):
        from data_management import trial_pages
        from edc import dashboard
        from exports import casebook_pages
        from subjects import randomization_pages
        from subjects.models import Site, Subject
        from trials.models import Trial

        def trial_admin_view(view):
            return self.admin_view(lambda request, **kwargs: view(self._registry[Trial], request,
                                                                  **kwargs))

        return [
            path("trials/trial/dashboards/", trial_admin_view(dashboard.dashboards_view),
                 name="trials_trial_dashboards"),
            path("trials/trial/<int:pk>/dashboard/",
                 trial_admin_view(dashboard.trial_dashboard_view), name="trials_trial_dashboard"),
            path("trials/trial/<int:pk>/status-matrix/",
                 trial_admin_view(trial_pages.status_matrix_view),
                 name="trials_trial_status_matrix"),
            path("trials/trial/<int:pk>/audit-trail/",
                 trial_admin_view(trial_pages.audit_trail_view), name="trials_trial_audit_trail"),
            path("trials/trial/<int:pk>/audit-trail/export/",
                 trial_admin_view(trial_pages.audit_trail_export_view),
                 name="trials_trial_audit_trail_export"),
            path("trials/trial/<int:pk>/randomization/",
                 trial_admin_view(randomization_pages.randomization_view),
                 name="trials_trial_randomization"),
            path("trials/trial/<int:pk>/randomization/extend/",
                 trial_admin_view(randomization_pages.extend_view),
                 name="trials_trial_randomization_extend"),
            path("trials/trial/<int:pk>/randomization/allocation-error/",
                 trial_admin_view(randomization_pages.allocation_error_view),
                 name="trials_trial_randomization_error"),
            path("subjects/subject/<int:pk>/casebook/",
                 self.admin_view(lambda request, pk: casebook_pages.casebook_view(
                     self._registry[Subject], request, pk)), name="subjects_subject_casebook"),
            path("subjects/site/<int:pk>/casebook/",
                 self.admin_view(lambda request, pk: casebook_pages.casebook_view(
                     self._registry[Site], request, pk)), name="subjects_site_casebook"),
            path("exports/exportrecord/<int:pk>/download/",
                 self.admin_view(casebook_pages.download_view),
                 name="exports_exportrecord_download"),
            *super().get_urls(),
        ]
