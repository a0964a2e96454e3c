"""Settings pages (users, roles, API keys, audit log, notifications), mounted at /settings/, and the public
invitation page."""

from django.urls import path

from permissions.views import api_keys, audit, invitations, notifications, roles, users

app_name = "permissions"
urlpatterns = [
    path("api-keys/", api_keys.api_key_list, name="api_key_list"),
    path("api-keys/new/", api_keys.api_key_create, name="api_key_create"),
    path("api-keys/<int:pk>/", api_keys.api_key_detail, name="api_key_detail"),
    path("api-keys/<int:pk>/revoke/", api_keys.api_key_revoke, name="api_key_revoke"),
    path("users/", users.user_list, name="users"),
    path("users/add/", users.user_add, name="user_add"),
    path("users/<int:pk>/", users.user_detail, name="user_detail"),
    path("users/<int:pk>/roles/", users.user_roles, name="user_roles"),
    path("users/<int:pk>/deactivate/", users.user_deactivate, name="user_deactivate"),
    path("users/<int:pk>/invite/", users.user_invite, name="user_invite"),
    path("roles/", roles.role_list, name="roles"),
    path("roles/add/", roles.role_create, name="role_create"),
    path("roles/<int:pk>/edit/", roles.role_edit, name="role_edit"),
    path("roles/<int:pk>/delete/", roles.role_delete, name="role_delete"),
    path("roles/<int:pk>/members/", roles.role_add_member, name="role_add_member"),
    path("roles/<int:pk>/members/<int:user_pk>/remove/", roles.role_remove_member, name="role_remove_member"),
    path("audit/", audit.audit_list, name="audit"),
    path("audit/export/", audit.audit_export, name="audit_export"),
    path("notifications/", notifications.notification_list, name="notifications"),
    path("notifications/<int:pk>/open/", notifications.notification_open, name="notification_open"),
    path("notifications/read/", notifications.notifications_read_all, name="notifications_read_all"),
    # Public: the invitation link itself is the credential (see the view).
    path("invitations/<str:token>/", invitations.invitation_accept, name="invitation_accept"),
]
