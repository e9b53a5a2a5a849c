"""The patient's ePRO pages: ``/epro/<token>/...`` (the token is the only parameter)."""

from django.urls import path

from . import views

app_name = "epro"

urlpatterns = [
    path("done/", views.done, name="done"),
    path("<token>/", views.start, name="start"),
    path("<token>/item/<int:number>/", views.item, name="item"),
    path("<token>/review/", views.review, name="review"),
    path("<token>/language/", views.language, name="language"),
    path("<token>/submit/", views.submit, name="submit"),
]
