"""API tokens: ``POST /api/v1/auth/token/`` (username and password -> token and expiry) and
``POST /api/v1/auth/token/revoke/``.

Tokens are django-rest-knox tokens: stored hashed, valid for ``REST_KNOX["TOKEN_TTL"]``
(``API_TOKEN_TTL_HOURS``), refused once expired or revoked. Failed attempts count towards the
account lock-out (``accounts.passwords``); issuing and revoking are in the audit trail
(``accounts.models.ApiToken``).
"""

from __future__ import annotations

import pghistory
from drf_spectacular.utils import extend_schema
from knox.models import AuthToken
from knox.settings import knox_settings
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from .passwords import AccountLocked, check_credentials


class Locked(APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "account_locked"
    default_detail = str(AccountLocked())


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as 'Authorization: Token <token>'")
    expiry = serializers.DateTimeField(help_text="UTC; the token is refused after it")


class RevokeSerializer(serializers.Serializer):
    all = serializers.BooleanField(default=False,
                                   help_text="Revoke every token of the user, not only this one")


class RevokedSerializer(serializers.Serializer):
    revoked = serializers.IntegerField()


def _audit(user, reason: str):
    return pghistory.context(user=user.pk, username=user.get_username(), reason=reason)


class TokenView(APIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(request=CredentialsSerializer, responses={200: TokenSerializer},
                   tags=["auth"], auth=[],
                   description="Exchange a username and password for an API token with an "
                               "expiry; repeated failures lock the account (429).")
    def post(self, request):
        data = CredentialsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            user = check_credentials(request, data.validated_data["username"],
                                     data.validated_data["password"])
        except AccountLocked as exc:
            raise Locked(str(exc)) from None
        if user is None or not user.is_active:
            raise ValidationError("Unable to log in with these credentials.",
                                  code="invalid_credentials")
        with _audit(user, "API token issued"):
            instance, token = AuthToken.objects.create(user=user,
                                                       expiry=knox_settings.TOKEN_TTL)
        return Response(TokenSerializer({"token": token, "expiry": instance.expiry}).data)


class RevokeView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=RevokeSerializer, responses={200: RevokedSerializer}, tags=["auth"],
                   description="Revoke the token this request authenticates with (or, with "
                               "all=true, every token of the user).")
    def post(self, request):
        data = RevokeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tokens = AuthToken.objects.filter(user=request.user)
        if not data.validated_data["all"]:
            if not isinstance(request.auth, AuthToken):
                raise ValidationError({"all": "This request carries no token: give all=true."})
            tokens = tokens.filter(pk=request.auth.pk)
        with _audit(request.user, "API token revoked by its user"):
            revoked, _ = tokens.delete()
        return Response({"revoked": revoked})
