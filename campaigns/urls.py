from django.urls import path

from campaigns import views

app_name = "campaigns"
urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("new/", views.campaign_create, name="create"),
    path("<int:pk>/", views.campaign_detail, name="detail"),
    path("<int:pk>/status/", views.campaign_status, name="status"),
    path("<int:pk>/activate/", views.campaign_activate, name="activate"),
    path("<int:pk>/pause/", views.campaign_pause, name="pause"),
    path("<int:pk>/stop/", views.campaign_stop, name="stop"),
]
