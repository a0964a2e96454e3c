from django.urls import path

from campaigns import views, views_profile

app_name = "campaigns"
urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("new/", views.campaign_create, name="create"),
    path("<int:pk>/", views.campaign_detail, name="detail"),
    path("<int:pk>/status/", views.campaign_status, name="status"),
    path("<int:pk>/versions/<int:number>/preview/", views.version_preview, name="preview"),
    path("<int:pk>/edit/", views.campaign_edit, name="edit"),
    path("<int:pk>/submit/", views.campaign_submit, name="submit"),
    path("<int:pk>/review/", views.campaign_review, name="review"),
    path("<int:pk>/review/approve/", views.campaign_approve, name="approve"),
    path("<int:pk>/review/request-changes/", views.campaign_request_changes, name="request_changes"),
    path("<int:pk>/activate/", views.campaign_activate, name="activate"),
    path("<int:pk>/pause/", views.campaign_pause, name="pause"),
    path("<int:pk>/stop/", views.campaign_stop, name="stop"),
    path("approval-policies/", views.policy_list, name="policy_list"),
    path("approval-policies/new/", views.policy_create, name="policy_create"),
    path("approval-policies/<int:pk>/", views.policy_edit, name="policy_edit"),
    path("approval-policies/<int:pk>/delete/", views.policy_delete, name="policy_delete"),
    path("profiles/<int:profile_id>/messages/", views_profile.profile_messages, name="profile_messages"),
]
