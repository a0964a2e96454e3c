import logging
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import OperationalError, close_old_connections
from redis.exceptions import ConnectionError as RedisConnectionError

from config.preflight import check_database, check_redis
from config.scheduler import scheduler_tick

log = logging.getLogger("config.scheduler")


class Command(BaseCommand):
    help = "Start due campaign occurrences, keep runs moving and reap stalled work, every few seconds."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run one pass and exit.")

    def handle(self, *args, once=False, **options):
        problems = check_database() + check_redis()
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise SystemExit(1)
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        log.info("scheduler started, a pass every %ss", settings.SCHEDULER_INTERVAL)
        while not stopping:
            started = time.monotonic()
            close_old_connections()
            try:
                scheduler_tick()
            except (OperationalError, RedisConnectionError) as exc:
                # Keep going: the next pass picks up from the ledger once the service is back.
                log.error("scheduler pass failed, retrying: %s", str(exc).splitlines()[0] if str(exc) else exc)
            if once:
                return
            time.sleep(max(0.0, settings.SCHEDULER_INTERVAL - (time.monotonic() - started)))
