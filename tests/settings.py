"""Settings for the test suite: the project's settings with fast hashing, small batches and a Redis
database of the tests' own (1 to 15, never the product's 0), so a test run never touches the queues of a running
product, and two test runs at once rarely share one: TEST_REDIS_DB picks it, else the process id does; under
pytest-xdist each worker takes the next one."""

import os
import re

os.environ.setdefault("SECRET_KEY", "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "dGVzdC1vbmx5LWZpZWxkLWtleS0wMTIzNDU2Nzg5YWI=")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")

from config.settings import *  # noqa: E402, F403
from config.settings import REDIS_URL, RQ_QUEUES  # noqa: E402

_TEST_REDIS_DB = int(os.environ.get("TEST_REDIS_DB") or 1 + os.getpid() % 15)
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if re.fullmatch(r"gw\d+", _WORKER) and os.environ.get("TEST_REDIS_DB_WORKER") != _WORKER:
    # Each xdist worker has a database of its own, as it has a test database of its own: one worker's `redis`
    # fixture empties its database before and after a test, which would take the other workers' queued jobs.
    _TEST_REDIS_DB = (_TEST_REDIS_DB - 1 + int(_WORKER[2:])) % 15 + 1
    # A process the worker starts (a second web process) is on the worker's database: no second offset.
    os.environ.update(TEST_REDIS_DB=str(_TEST_REDIS_DB), TEST_REDIS_DB_WORKER=_WORKER)


def _test_database(url: str) -> str:
    if url.startswith("unix://"):
        path = url.split("?")[0]
        return f"{path}?db={_TEST_REDIS_DB}"
    return re.sub(r"^(rediss?://[^/]+)(/\d*)?$", rf"\1/{_TEST_REDIS_DB}", url.split("?")[0])


REDIS_URL = _test_database(REDIS_URL)
for _queue in RQ_QUEUES.values():
    _queue["URL"] = REDIS_URL

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CAMPAIGNS_PLAN_CHUNK = 7
CAMPAIGNS_SEND_SLICE = int(
    os.environ.get("TEST_CAMPAIGNS_SEND_SLICE", "5")
)  # a worker process a test starts may ask more
CAMPAIGNS_SEND_JOBS_PER_RUN = 2
# Each open and click written in its own request, so a test reads what it counted; the kept hits' tests turn it on
# (in a web process they start, with TEST_CAMPAIGNS_TRACKING_FLUSH_MS).
CAMPAIGNS_TRACKING_FLUSH_MS = int(os.environ.get("TEST_CAMPAIGNS_TRACKING_FLUSH_MS", "0"))
CHANNELS_ALLOW_PRIVATE_NETWORKS = True  # the fake providers listen on 127.0.0.1; the refusal's tests turn it off
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    # A file, not Django's shared-cache memory database: concurrent workers then meet the same WAL and
    # IMMEDIATE-transaction locking as in production instead of shared-cache table locks.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-campaigns-{os.getpid()}.sqlite3")}  # noqa: F405

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 - whitenoise warns on every request otherwise
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
