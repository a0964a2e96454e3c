from django.urls import path

from audiences import views_audiences, views_imports, views_profiles

app_name = "audiences"
urlpatterns = [
    # audiences pages
    path("", views_audiences.audience_list, name="audience_list"),
    path("new/", views_audiences.audience_create, name="audience_create"),
    path("rule-builder/", views_audiences.rule_builder, name="rule_builder"),
    path("rule-estimate/", views_audiences.rule_estimate, name="rule_estimate"),
    path("<int:pk>/", views_audiences.audience_detail, name="audience_detail"),
    path("<int:pk>/edit/", views_audiences.audience_edit, name="audience_edit"),
    path("<int:pk>/delete/", views_audiences.audience_delete, name="audience_delete"),
    path("<int:pk>/size/", views_audiences.audience_size, name="audience_size"),
    path("<int:pk>/preview/", views_audiences.audience_preview, name="audience_preview"),
    # profiles
    path("profiles/", views_profiles.profile_list, name="profile_list"),
    path("profiles/<int:pk>/", views_profiles.profile_detail, name="profile_detail"),
    path("profiles/<int:pk>/export/", views_profiles.profile_export, name="profile_export"),
    path("profiles/<int:pk>/erase/", views_profiles.profile_erase, name="profile_erase"),
    path("attributes/", views_profiles.attribute_list, name="attribute_list"),
    path("attributes/new/", views_profiles.attribute_create, name="attribute_create"),
    path("attributes/<int:pk>/", views_profiles.attribute_edit, name="attribute_edit"),
    path("identity-namespaces/", views_profiles.namespace_list, name="namespace_list"),
    path("identity-namespaces/new/", views_profiles.namespace_create, name="namespace_create"),
    path("identity-namespaces/<int:pk>/delete/", views_profiles.namespace_delete, name="namespace_delete"),
    path("consent-settings/", views_profiles.consent_settings, name="consent_settings"),
    # imports
    path("imports/", views_imports.import_list, name="import_list"),
    path("imports/new/", views_imports.import_create, name="import_create"),
    path("imports/<int:pk>/", views_imports.import_detail, name="import_detail"),
    path("imports/<int:pk>/map/", views_imports.import_map, name="import_map"),
    path("imports/<int:pk>/progress/", views_imports.import_progress, name="import_progress"),
    path("imports/<int:pk>/cancel/", views_imports.import_cancel, name="import_cancel"),
    path("imports/<int:pk>/errors.csv", views_imports.import_errors, name="import_errors"),
]
