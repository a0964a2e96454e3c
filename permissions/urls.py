"""Settings pages (users, roles, API keys, audit log, notifications), mounted at /settings/."""

from django.urls import include, path

app_name = "permissions"
urlpatterns = [
    path("api-keys/", include("permissions.api_key_urls")),
]
