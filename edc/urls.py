from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from accounts.api import RevokeView, TokenView

from .api.router import register_all
from .health import health

router = register_all()

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
    path("api/v1/auth/token/", TokenView.as_view(), name="api-token"),
    path("api/v1/auth/token/revoke/", RevokeView.as_view(), name="api-token-revoke"),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema",
                                                     template_name="edc/redoc.html"),
         name="api-redoc"),
    path("api-auth/", include("rest_framework.urls")),
    # the patient's ePRO pages (no account: a one-time link) and the admin's language switch
    path("epro/", include("epro.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
]
