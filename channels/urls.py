from django.urls import path

from channels.views import configurations, public, suppression

app_name = "channels"
urlpatterns = [
    # configurations
    path("", configurations.configuration_list, name="configuration_list"),
    path("new/", configurations.configuration_create, name="configuration_create"),
    path("<int:pk>/", configurations.configuration_detail, name="configuration_detail"),
    path("<int:pk>/edit/", configurations.configuration_edit, name="configuration_edit"),
    path("<int:pk>/active/", configurations.configuration_set_active, name="configuration_set_active"),
    path("<int:pk>/delete/", configurations.configuration_delete, name="configuration_delete"),
    path("<int:pk>/send-test/", configurations.configuration_send_test, name="configuration_send_test"),
    # suppression and consent
    # (routes of the suppression list, unsubscribe and consent pages, and provider feedback go here)
    path("suppression/", suppression.suppression_list, name="suppression_list"),
    path("suppression/export/", suppression.suppression_export, name="suppression_export"),
    path("suppression/add/", suppression.suppression_add, name="suppression_add"),
    path("suppression/<int:pk>/remove/", suppression.suppression_remove, name="suppression_remove"),
    # Public, each signed by the provider (see channels.views.public); the unsubscribe links are /u/<token>/.
    path("<int:pk>/sms/inbound/", public.sms_inbound, name="sms_inbound"),
    path("<int:pk>/feedback/", public.feedback_events, name="feedback_events"),
    path("<int:pk>/feedback/dsn/", public.feedback_report, name="feedback_report"),
]
