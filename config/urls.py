from django.contrib.auth import views as auth_views
from django.urls import include, path

from campaigns.views import dashboard as campaigns_dashboard
from campaigns.views import tracking as campaigns_tracking
from channels.views import public as channels_public
from config import metrics
from config.api import api
from permissions.forms.login import LoginForm

urlpatterns = [
    # Public and short (SMS bodies count characters): the tracking links in messages, their signed token the
    # credential (campaigns.tracking). First: the most requested URLs of all (every message's opens and clicks),
    # resolved before any other.
    path("t/o/<str:token>/", campaigns_tracking.track_open, name="track_open"),
    path("t/c/<str:token>/", campaigns_tracking.track_click, name="track_click"),
    path("", campaigns_dashboard.home, name="home"),
    path("login/", auth_views.LoginView.as_view(authentication_form=LoginForm), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("campaigns/", include("campaigns.urls")),
    path("audiences/", include("audiences.urls")),
    path("channels/", include("channels.urls")),
    path("settings/", include("permissions.urls")),
    path("api/", api.urls),
    # For Prometheus: a bearer token (METRICS_TOKEN) is the credential, not a login (config.metrics).
    path("metrics", metrics.metrics, name="metrics"),
    # Public and short too: the unsubscribe links in messages, see channels.unsubscribe.
    path("u/<str:token>/", channels_public.unsubscribe, name="unsubscribe"),
]
