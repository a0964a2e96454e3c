"""What an error page or an error report may show: Django's filter, applied in development too.

Django masks `sensitive_variables` and `sensitive_post_parameters` only when DEBUG is off. The quick start runs
with DEBUG on, and an error page there is as public as the server: a caller who can make a request fail must
never read a configuration's secret in its frames, so the masks apply always. Settings whose names do not say
"password" still carry one in a URL (`DATABASE_URL`, `REDIS_URL`, the queues' `URL`): their passwords are masked
too.
"""

import re

from django.views.debug import SafeExceptionReporterFilter

# `scheme://user:password@host`: the password part.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/@:\s]*:)[^@/\s]*(?=@)", re.IGNORECASE)


class AlwaysSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    def is_active(self, request):
        return True

    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        if type(cleansed) is str:  # not a lazy object that only claims to be one
            return _URL_PASSWORD.sub(lambda match: match["head"] + self.cleansed_substitute, cleansed)
        return cleansed
