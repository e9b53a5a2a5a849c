"""OpenAPI (drf-spectacular): the API token scheme of ``accounts.auth.TokenAuthentication``."""

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme


class TokenScheme(KnoxTokenScheme):
    target_class = "accounts.auth.TokenAuthentication"
