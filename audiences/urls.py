from django.urls import path

from audiences.views import audiences, imports, profiles

app_name = "audiences"
urlpatterns = [
    # audiences pages
    path("", audiences.audience_list, name="audience_list"),
    path("new/", audiences.audience_create, name="audience_create"),
    path("rule-builder/", audiences.rule_builder, name="rule_builder"),
    path("rule-estimate/", audiences.rule_estimate, name="rule_estimate"),
    path("<int:pk>/", audiences.audience_detail, name="audience_detail"),
    path("<int:pk>/edit/", audiences.audience_edit, name="audience_edit"),
    path("<int:pk>/delete/", audiences.audience_delete, name="audience_delete"),
    path("<int:pk>/size/", audiences.audience_size, name="audience_size"),
    path("<int:pk>/preview/", audiences.audience_preview, name="audience_preview"),
    # profiles
    path("profiles/", profiles.profile_list, name="profile_list"),
    path("profiles/<int:pk>/", profiles.profile_detail, name="profile_detail"),
    path("profiles/<int:pk>/export/", profiles.profile_export, name="profile_export"),
    path("profiles/<int:pk>/erase/", profiles.profile_erase, name="profile_erase"),
    path("attributes/", profiles.attribute_list, name="attribute_list"),
    path("attributes/new/", profiles.attribute_create, name="attribute_create"),
    path("attributes/<int:pk>/", profiles.attribute_edit, name="attribute_edit"),
    path("identity-namespaces/", profiles.namespace_list, name="namespace_list"),
    path("identity-namespaces/new/", profiles.namespace_create, name="namespace_create"),
    path("identity-namespaces/<int:pk>/delete/", profiles.namespace_delete, name="namespace_delete"),
    path("consent-settings/", profiles.consent_settings, name="consent_settings"),
    # imports
    path("imports/", imports.import_list, name="import_list"),
    path("imports/new/", imports.import_create, name="import_create"),
    path("imports/<int:pk>/", imports.import_detail, name="import_detail"),
    path("imports/<int:pk>/map/", imports.import_map, name="import_map"),
    path("imports/<int:pk>/progress/", imports.import_progress, name="import_progress"),
    path("imports/<int:pk>/cancel/", imports.import_cancel, name="import_cancel"),
    path("imports/<int:pk>/errors.csv", imports.import_errors, name="import_errors"),
    path("imports/<int:pk>/rows-to-fix.csv", imports.import_error_rows, name="import_error_rows"),
]
