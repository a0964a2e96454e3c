"""The settings of the web server `manage.py bench_trigger` starts: the product's, with the URLconf that adds the
benchmark's two baseline views (config.bench_urls). Nothing else differs from a deployment."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "config.bench_urls"
