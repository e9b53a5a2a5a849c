"""The patient's pages (no account): start, one item per screen, review, submit, thanks.

Plain Django views and templates, mobile first; JavaScript only stamps the device's clock on
submission. The token is the only thing in the address; pages are served with
``Referrer-Policy: same-origin`` (no address sent to another site; ``no-referrer`` would make
browsers post ``Origin: null``, refused by the CSRF check) and ``Cache-Control: no-store`` so
it leaks nowhere, in the link's language (Django i18n for the page, dates in its format, the
trial's licensed wording for the items), which the patient may switch to any other language
the trial loaded wording in. Every request counts against the client's address
(``PatientPageThrottle``, in the cache every process shares).
"""

from __future__ import annotations

import contextlib
import functools

from django.conf import settings
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from . import services, wording
from .throttling import PatientPageThrottle

DEVICE_COOKIE = "epro_device"
ITEMS = list(wording.ITEM_SCALE)


def _finish(request, response):
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex"
    add_never_cache_headers(response)
    return response


def _page(request, template: str, context: dict, language: str, status: int = 200):
    with translation.override(language):
        response = TemplateResponse(request, template, {"language": language, **context},
                                    status=status)
        response.render()
    return _finish(request, response)


def _refused(request, refusal: services.LinkRefused, language: str):
    with translation.override(language):
        message = refusal.message()
    return _page(request, "epro/refused.html", {"message": message, "code": refusal.code},
                 language, status=refusal.status)


def patient_page(view):
    """Rate limit, resolve the token to a usable link (bound to this device on its first
    opening), and render refusals (when opened or while answering) as a page in the link's
    (else the browser's) language."""

    @functools.wraps(view)
    def wrapper(request, token: str, *args, **kwargs):
        language = translation.get_language()
        throttle = PatientPageThrottle()
        if not throttle.allow_request(request, None):
            with translation.override(language):
                response = _page(request, "epro/refused.html", {
                    "message": translation.gettext(
                        "Too many requests. Please wait a minute and try again."),
                    "code": "throttled"}, language, status=429)
            response["Retry-After"] = str(int(throttle.wait() or 60))
            return response
        try:
            link, new_device = services.open_link(token, request.COOKIES.get(DEVICE_COOKIE))
        except services.LinkRefused as refusal:
            with contextlib.suppress(services.LinkRefused):
                language = services.find_link(token).language
            return _refused(request, refusal, language)
        try:
            with translation.override(link.language):
                response = view(request, token, link, *args, **kwargs)
        except services.LinkRefused as refusal:  # e.g. data locked while the patient answered
            return _refused(request, refusal, link.language)
        if new_device:  # Lax: sent when the patient opens the link again from a message
            response.set_cookie(DEVICE_COOKIE, new_device, path=f"/epro/{token}/",
                                httponly=True, samesite="Lax", secure=request.is_secure(),
                                max_age=60 * 60 * 24 * 30)
        return _finish(request, response)

    return wrapper


def _switcher(request, link) -> dict:
    """The language switch of the patient pages: the languages the trial loaded wording in
    (none offered when there is only one), and the page to come back to."""
    codes = services.languages_loaded(link.subject.trial)
    names = dict(settings.LANGUAGES)
    return {"languages": [(code, names[code]) for code in codes] if len(codes) > 1 else [],
            "here": request.get_full_path()}


def _wording(link):
    row = services.wording_for(link.subject.trial, link.language)
    return row.wording() if row else None


def _no_wording(request, link):
    return _page(request, "epro/refused.html", {
        "message": translation.gettext("This questionnaire is not available in this language. "
                                       "Please contact the study team."),
        "code": "no_wording"}, link.language, status=503)


@require_http_methods(["GET"])
@patient_page
def start(request, token, link):
    text = _wording(link)
    if text is None:
        return _no_wording(request, link)
    return _page(request, "epro/start.html", {"token": token, "wording": text,
                                              "first": ITEMS[0], "count": len(ITEMS),
                                              "window": services.window_of(link.visit),
                                              **_switcher(request, link)},
                 link.language)


@require_http_methods(["GET", "POST"])
@patient_page
def item(request, token, link, number: int):
    if number not in wording.ITEM_SCALE:
        return redirect("epro:review", token=token)
    text = _wording(link)
    if text is None:
        return _no_wording(request, link)
    error = ""
    if request.method == "POST":
        try:
            value = services.answer_value(number, request.POST.get("answer"))
        except ValueError:
            error = translation.gettext("Please choose one of the answers, or go on without "
                                        "answering.")
        else:
            services.save_answer(link, number, value)
            if request.POST.get("go") == "back":
                return redirect(_previous(token, number))
            following = number + 1
            return redirect("epro:item", token=token, number=following) if (
                following in wording.ITEM_SCALE) else redirect("epro:review", token=token)
    current = link.answers.get(str(number))
    heading = next((text.headings[n] for n in sorted(text.headings, reverse=True)
                    if n <= number), "")
    return _page(request, "epro/item.html", {
        "token": token, "wording": text, "number": number, "count": len(ITEMS),
        "text": text.items[number], "heading": heading, "options": text.options(number),
        "current": current, "error": error, "back": _previous(token, number),
        "scale": wording.ITEM_SCALE[number], **_switcher(request, link),
    }, link.language, status=400 if error else 200)


def _previous(token: str, number: int) -> str:
    if number > ITEMS[0]:
        return reverse("epro:item", kwargs={"token": token, "number": number - 1})
    return reverse("epro:start", kwargs={"token": token})


@require_http_methods(["GET"])
@patient_page
def review(request, token, link):
    text = _wording(link)
    if text is None:
        return _no_wording(request, link)
    return _page(request, "epro/review.html", {
        "token": token, "wording": text, "missing": services.unanswered(link),
        "count": len(ITEMS), "answered": len(ITEMS) - len(services.unanswered(link)),
        **_switcher(request, link),
    }, link.language)


@require_http_methods(["POST"])
@patient_page
def language(request, token, link):
    """Switch the questionnaire's language (answers kept), back to the page it was asked on."""
    try:
        services.switch_language(link, request.POST.get("language", ""))
    except ValueError:
        return _page(request, "epro/refused.html", {
            "message": translation.gettext("This language is not available for this "
                                           "questionnaire."),
            "code": "no_wording"}, link.language, status=400)
    here = request.POST.get("next", "")
    if not (here.startswith(f"/epro/{token}/") and url_has_allowed_host_and_scheme(
            here, allowed_hosts={request.get_host()}, require_https=request.is_secure())):
        here = reverse("epro:start", kwargs={"token": token})
    return redirect(here)


@require_http_methods(["POST"])
@patient_page
def submit(request, token, link):
    services.submit(link, request.COOKIES.get(DEVICE_COOKIE), request.POST.get("device_time"))
    response = redirect("epro:done")
    response.delete_cookie(DEVICE_COOKIE, path=f"/epro/{token}/")
    response["Location"] += f"?lang={link.language}"
    return response


@require_http_methods(["GET"])
def done(request):
    language = request.GET.get("lang") or translation.get_language()
    if language not in wording.LANGUAGE_TAGS.values():
        language = translation.get_language()
    return _page(request, "epro/done.html", {}, language)
