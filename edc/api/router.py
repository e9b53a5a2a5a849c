"""The versioned API router (``/api/v1/``); each app registers its viewsets here."""

from rest_framework.routers import DefaultRouter

router = DefaultRouter()


def register_all() -> DefaultRouter:
    from adverse_events.api import register as register_adverse_events
    from adverse_events.dose_api import register as register_dose_finding
    from data_management.api import register as register_data_management
    from data_management.document_api import register as register_documents
    from data_management.trial_api import register as register_trial_data
    from epro.api import register as register_epro
    from exports.api import register as register_exports
    from notifications.api import register as register_notifications
    from subjects.api import register as register_subjects
    from subjects.randomization_api import register as register_randomization
    from trials.api import register as register_trials
    from visits.api import register as register_visits

    # trial actions first: their routes share the ``trials`` prefix, whose API-root entry must
    # stay the trial list's
    for register in (register_dose_finding, register_trial_data, register_randomization,
                     register_trials, register_subjects, register_visits, register_epro,
                     register_adverse_events, register_data_management, register_documents,
                     register_exports, register_notifications):
        register(router)
    return router
