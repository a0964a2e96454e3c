"""The shared rate limiter under three worker processes taking tokens from one bucket at once.

The token bucket holds at most `capacity` tokens (one second's worth: capacity = rate) and refills at `rate`
per second, so the invariant is: over any window of length w, the tokens granted are at most
capacity + rate * w. For a one-second window that is twice the rate at most, reached only by a full bucket's
burst followed by a second of refill; in steady state a second grants about `rate`.

The limiter's clock is the caller's `time.time()`, read inside `take`. A worker records the time before and
after each call, so a grant's true time lies in [before, after]; grants recorded within a window of length w
then happened within w + the longest call, and that is the window the bound is checked against.
"""

import multiprocessing
import time

import pytest
from django.conf import settings

RATE = 50.0
DURATION = 3.0
WORKERS = 3
SLICE = 5


def _worker(redis_url: str, key: str, start_at: float, stop_at: float, results) -> None:
    """One worker process: take slices of tokens until stop_at; when refused, wait as a re-enqueued job would."""
    import redis

    from channels.ratelimit import RateLimiter

    limiter = RateLimiter(redis.Redis.from_url(redis_url))
    grants = []
    time.sleep(max(0.0, start_at - time.time()))
    while (before := time.time()) < stop_at:
        granted, wait = limiter.take(key, rate=RATE, requested=SLICE)
        after = time.time()
        if granted:
            grants.append((before, after, granted))
        if granted < SLICE:
            time.sleep(max(wait, 0.002))
    results.put(grants)


@pytest.fixture
def grants(redis):
    context = multiprocessing.get_context("spawn")  # fresh interpreters, each with its own Redis connection
    results = context.Queue()
    start_at = time.time() + 1.5  # time for the interpreters to start
    processes = [
        context.Process(
            target=_worker, args=(settings.REDIS_URL, "configuration:processes", start_at, start_at + DURATION, results)
        )
        for _ in range(WORKERS)
    ]
    for process in processes:
        process.start()
    per_worker = [results.get(timeout=30) for _ in processes]
    for process in processes:
        process.join(timeout=10)
        assert process.exitcode == 0
    return per_worker


def test_three_processes_never_exceed_the_bucket_and_reach_the_rate(grants):
    capacity = max(1.0, RATE)
    assert all(worker for worker in grants), "every worker got tokens"
    records = sorted((after, granted) for worker in grants for before, after, granted in worker)
    longest_call = max(after - before for worker in grants for before, after, _ in worker)
    total = sum(granted for _, granted in records)

    for window in (0.25, 1.0, 2.0):
        # Slide a window of `window` seconds from every grant: the most any window holds.
        most, end = 0, 0
        running = 0
        for start, (start_at, _) in enumerate(records):
            while end < len(records) and records[end][0] <= start_at + window:
                running += records[end][1]
                end += 1
            most = max(most, running)
            running -= records[start][1]
        bound = capacity + RATE * (window + longest_call)
        assert most <= bound, f"{most} tokens within {window} s, more than {bound:.1f}"

    # Three hungry workers drain the bucket: at least 80% of rate x duration (the burst comes on top).
    assert total >= 0.8 * RATE * DURATION, f"only {total} tokens in {DURATION} s"
    assert total <= capacity + RATE * (DURATION + longest_call)
