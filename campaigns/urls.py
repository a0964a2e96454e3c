from django.urls import path

from campaigns.views import campaigns, delivery_rules, policies, profiles

app_name = "campaigns"
urlpatterns = [
    path("", campaigns.campaign_list, name="list"),
    path("new/", campaigns.campaign_create, name="create"),
    path("schedule-preview/", campaigns.schedule_preview, name="schedule_preview"),
    path("<int:pk>/", campaigns.campaign_detail, name="detail"),
    path("<int:pk>/status/", campaigns.campaign_status, name="status"),
    path("<int:pk>/versions/<int:number>/preview/", campaigns.version_preview, name="preview"),
    path("<int:pk>/edit/", campaigns.campaign_edit, name="edit"),
    path("<int:pk>/contract/", campaigns.campaign_contract, name="contract"),
    path("<int:pk>/submit/", campaigns.campaign_submit, name="submit"),
    path("<int:pk>/review/", campaigns.campaign_review, name="review"),
    path("<int:pk>/review/approve/", campaigns.campaign_approve, name="approve"),
    path("<int:pk>/review/request-changes/", campaigns.campaign_request_changes, name="request_changes"),
    path("<int:pk>/activate/", campaigns.campaign_activate, name="activate"),
    path("<int:pk>/pause/", campaigns.campaign_pause, name="pause"),
    path("<int:pk>/stop/", campaigns.campaign_stop, name="stop"),
    path("approval-policies/", policies.policy_list, name="policy_list"),
    path("approval-policies/new/", policies.policy_create, name="policy_create"),
    path("approval-policies/<int:pk>/", policies.policy_edit, name="policy_edit"),
    path("approval-policies/<int:pk>/delete/", policies.policy_delete, name="policy_delete"),
    path("delivery-rules/", delivery_rules.delivery_rule_list, name="delivery_rules"),
    path("delivery-rules/caps/new/", delivery_rules.cap_create, name="cap_create"),
    path("delivery-rules/caps/<int:pk>/", delivery_rules.cap_edit, name="cap_edit"),
    path("delivery-rules/caps/<int:pk>/delete/", delivery_rules.cap_delete, name="cap_delete"),
    path("delivery-rules/quiet-hours/new/", delivery_rules.quiet_create, name="quiet_create"),
    path("delivery-rules/quiet-hours/<int:pk>/", delivery_rules.quiet_edit, name="quiet_edit"),
    path("delivery-rules/quiet-hours/<int:pk>/delete/", delivery_rules.quiet_delete, name="quiet_delete"),
    path("profiles/<int:profile_id>/messages/", profiles.profile_messages, name="profile_messages"),
]
