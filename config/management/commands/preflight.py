import sys

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connections

from config.preflight import check_database, check_redis, database_location, redact_url


class Command(BaseCommand):
    help = (
        "Check that the database answers and is migrated, that Redis answers, and the system checks. "
        "Prints one line per problem and exits 1, or exits 0 when all is ready."
    )
    # The system checks touch the database: run them only once it is known to answer.
    requires_system_checks = []

    def handle(self, *args, **options):
        problems = check_database() + check_redis()
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            sys.exit(1)
        self.check(display_num_errors=False)
        database = database_location(connections["default"].settings_dict)
        self.stdout.write(f"Preflight OK: database {database}, Redis {redact_url(settings.REDIS_URL)}.")
