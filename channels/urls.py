from django.urls import path

from channels import views, views_public, views_suppression

app_name = "channels"
urlpatterns = [
    # configurations
    path("", views.configuration_list, name="configuration_list"),
    path("new/", views.configuration_create, name="configuration_create"),
    path("<int:pk>/", views.configuration_detail, name="configuration_detail"),
    path("<int:pk>/edit/", views.configuration_edit, name="configuration_edit"),
    path("<int:pk>/active/", views.configuration_set_active, name="configuration_set_active"),
    path("<int:pk>/delete/", views.configuration_delete, name="configuration_delete"),
    path("<int:pk>/send-test/", views.configuration_send_test, name="configuration_send_test"),
    # suppression and consent
    # (routes of the suppression list, unsubscribe and consent pages, and provider feedback go here)
    path("suppression/", views_suppression.suppression_list, name="suppression_list"),
    path("suppression/export/", views_suppression.suppression_export, name="suppression_export"),
    path("suppression/add/", views_suppression.suppression_add, name="suppression_add"),
    path("suppression/<int:pk>/remove/", views_suppression.suppression_remove, name="suppression_remove"),
    # Public, each signed by the provider (see channels.views_public); the unsubscribe links are /u/<token>/.
    path("<int:pk>/sms/inbound/", views_public.sms_inbound, name="sms_inbound"),
    path("<int:pk>/feedback/", views_public.feedback_events, name="feedback_events"),
    path("<int:pk>/feedback/dsn/", views_public.feedback_report, name="feedback_report"),
]
