from channels.ratelimit import RateLimiter


def test_bucket_is_shared_and_refills_at_the_rate(redis):
    first, second = RateLimiter(redis), RateLimiter(redis)  # two workers, one bucket

    granted_a, _ = first.take("configuration:1", rate=10, requested=8)
    granted_b, wait = second.take("configuration:1", rate=10, requested=8)

    assert (granted_a, granted_b) == (8, 2)
    assert 0 < wait <= 0.1


def test_buckets_are_per_key(redis):
    limiter = RateLimiter(redis)
    assert limiter.take("configuration:1", rate=5, requested=5)[0] == 5
    assert limiter.take("configuration:2", rate=5, requested=5)[0] == 5
    assert limiter.take("configuration:1", rate=5, requested=5)[0] == 0
