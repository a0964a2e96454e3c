"""Messages per second per configuration, shared by every worker on every machine through Redis."""

import time

# A token bucket: refill by elapsed time, grant up to `requested` tokens, return (granted, seconds until one
# more token). Time comes from the caller so the script stays deterministic for replication.
_TAKE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local requested = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
if now > at then
  tokens = math.min(capacity, tokens + (now - at) * rate)
  at = now
end
local granted = math.min(requested, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
local wait = 0
if granted < requested then wait = (1 - (tokens - math.floor(tokens))) / rate end
return {granted, tostring(wait)}
"""


class RateLimiter:
    def __init__(self, redis):
        self.redis = redis
        self._take = redis.register_script(_TAKE)

    def take(self, key: str, *, rate: float, requested: int) -> tuple[int, float]:
        """Take up to `requested` tokens from the bucket `key` filling at `rate` per second.

        Returns how many were granted and, when fewer than asked, how long until the next one.
        Bursts are capped at one second's worth of tokens.
        """
        capacity = max(1.0, rate)
        granted, wait = self._take(keys=[f"ratelimit:{key}"], args=[rate, capacity, time.time(), requested])
        return int(granted), float(wait)
