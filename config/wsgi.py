import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
try:
    application = get_wsgi_application()
except ImproperlyConfigured as exc:
    # A bad environment variable is the operator's to fix: one line naming it, not a traceback. Status 4 is
    # gunicorn's "app failed to load", on which it stops; on any other status it would restart workers forever.
    sys.stderr.write(f"Configuration error: {exc}\n")
    sys.exit(4)
