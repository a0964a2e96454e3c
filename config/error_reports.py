"""What an error page or an error report may show: Django's filter, applied in development too.

Django masks `sensitive_variables` and `sensitive_post_parameters` only when DEBUG is off. The quick start runs
with DEBUG on, and an error page there is as public as the server: a caller who can make a request fail must
never read a configuration's secret in its frames, so the masks apply always.
"""

from django.views.debug import SafeExceptionReporterFilter


class AlwaysSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    def is_active(self, request):
        return True
