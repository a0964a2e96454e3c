"""The RQ worker class of the pool: long-lived, running jobs in its own process (SimpleWorker), so compiled
templates and open SMTP connections survive from one job to the next."""

from django.db import close_old_connections
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker


class CampaignWorker(SimpleWorker):
    def __init__(self, *args, **kwargs):
        # Jobs are JSON, never pickle, whatever serializer a command line passes.
        kwargs["serializer"] = JSONSerializer
        super().__init__(*args, **kwargs)

    def perform_job(self, job, queue, *args, **kwargs):
        # A database connection that broke or outlived CONN_MAX_AGE between jobs is replaced, not reused.
        close_old_connections()
        try:
            return super().perform_job(job, queue, *args, **kwargs)
        finally:
            close_old_connections()
