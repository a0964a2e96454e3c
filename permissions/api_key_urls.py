"""API key pages, mounted at /settings/api-keys/ (URL names live in the `permissions` namespace)."""

from django.urls import path

from permissions import api_key_views as views

urlpatterns = [
    path("", views.api_key_list, name="api_key_list"),
    path("new/", views.api_key_create, name="api_key_create"),
    path("<int:pk>/", views.api_key_detail, name="api_key_detail"),
    path("<int:pk>/revoke/", views.api_key_revoke, name="api_key_revoke"),
]
