"""The relay's shared store in Redis, for relays on several machines (one Redis for all).

Same interface as :class:`.sqlite.SQLiteStore`. Every check-and-count is a Lua
script (Redis runs a script atomically), every key expires on its own (a day's budget after two
days, an answer after its grace period), so nothing needs cleaning up. Time is the relay's wall
clock, passed in, as with SQLite: keep the machines' clocks in sync (NTP). The ``redis``
package is an optional part (the ``redis`` extra), imported when a Redis store is opened.
"""

from __future__ import annotations

import time

from .base import USAGE_DAYS, Store

__all__ = ["RedisStore"]

_TAKE_STREAM = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1] + ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(ARGV[3]) + 1)
return 1
"""
_HIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(oldest[2] + ARGV[2] - ARGV[1])
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(ARGV[2]) + 1)
return false
"""
_RESERVE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return tostring(used) end
redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], 172800)
return false
"""
_SET_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[3] and (redis.call('HGET', KEYS[1], 'owner') or '') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

_ADD_USAGE = """
redis.call('SADD', KEYS[2], ARGV[1])
for i = 3, #ARGV, 2 do
  if ARGV[i] == 'last' then
    if tonumber(ARGV[i + 1]) > tonumber(redis.call('HGET', KEYS[1], 'last') or '0') then
      redis.call('HSET', KEYS[1], 'last', ARGV[i + 1])
    end
  else
    redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
"""


class RedisStore(Store):
    """Counters and answers in one Redis server, shared by every relay that uses it."""

    def __init__(self, url: str, prefix: str = "relay:") -> None:
        import redis.asyncio as redis  # an optional part: pip install 'redis' (the extra)

        self.url = url
        self.prefix = prefix
        # A pool that waits for a free connection: redis-py's default one raises
        # MaxConnectionsError beyond 100 at once, and every resumable answer uses up to three
        # (its producer, watcher and reader): issue 22, at c = 100.
        self._redis = redis.Redis.from_pool(redis.BlockingConnectionPool.from_url(
            url, max_connections=100, timeout=30))
        self._take = self._redis.register_script(_TAKE_STREAM)
        self._hit = self._redis.register_script(_HIT)
        self._reserve = self._redis.register_script(_RESERVE)
        self._set_if_exists = self._redis.register_script(_SET_IF_EXISTS)
        self._add_usage = self._redis.register_script(_ADD_USAGE)
        self._seq = 0

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def take_stream(self, client: str, lease: str, limit: int, ttl: float) -> bool:
        args = [time.time(), limit, ttl, lease]
        return bool(await self._take(keys=[self._key("streams", client)], args=args))

    async def drop_stream(self, client: str, lease: str) -> None:
        await self._redis.zrem(self._key("streams", client), lease)

    async def hit(self, client: str, limit: int, window: float) -> float | None:
        self._seq += 1
        member = f"{time.time()}:{id(self)}:{self._seq}"  # unique within the window
        wait = await self._hit(keys=[self._key("hits", client)],
                               args=[time.time(), window, limit, member])
        return None if wait is None else max(float(wait), 0.0)

    async def reserve(self, client: str, day: str, amount: float, budget: float) -> float | None:
        used = await self._reserve(keys=[self._key("budget", client, day)],
                                   args=[amount, budget])
        return None if used is None else float(used)

    async def adjust(self, client: str, day: str, delta: float) -> None:
        key = self._key("budget", client, day)
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.incrbyfloat(key, delta).expire(key, 172800).execute()

    async def used(self, client: str, day: str) -> float:
        return float(await self._redis.get(self._key("budget", client, day)) or 0)

    async def add_usage(self, client: str, day: str, counts: dict[str, float]) -> None:
        pairs = [part for name, value in counts.items() for part in (name, repr(float(value)))]
        await self._add_usage(keys=[self._key("usage", day, client), self._key("usage", day)],
                              args=[client, USAGE_DAYS * 86400, *pairs])

    async def usage(self, day: str) -> dict[str, dict[str, float]]:
        clients = sorted(c.decode() for c in await self._redis.smembers(self._key("usage", day)))
        async with self._redis.pipeline(transaction=False) as pipe:
            for client in clients:
                pipe.hgetall(self._key("usage", day, client))
            records = await pipe.execute() if clients else []
        return {client: {k.decode(): float(v) for k, v in record.items()}
                for client, record in zip(clients, records, strict=True) if record}

    async def open_answer(self, answer: str, ttl: float, owner: str = "") -> None:
        key = self._key("answer", answer)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"state": "running", "seen": time.time(), "stop": 0,
                                    "owner": owner})
            await pipe.expire(key, int(ttl) + 1).execute()

    async def append(self, answer: str, seq: int, events: list[bytes]) -> None:
        key = self._key("events", answer)
        async with self._redis.pipeline(transaction=True) as pipe:
            # One producer appends in order, so list index + 1 is the event's seq.
            await pipe.rpush(key, *events).expire(key, 3600).execute()

    async def finish(self, answer: str, keep: float) -> None:
        keys = self._key("answer", answer), self._key("events", answer)
        if keep <= 0:
            await self._redis.delete(*keys)
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys[0], "state", "finished")
            for key in keys:
                pipe.pexpire(key, int(keep * 1000))
            await pipe.execute()

    async def read(self, answer: str, after: int) -> tuple[str | None, list[tuple[int, bytes]]]:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(self._key("answer", answer), "state")
            state, events = await pipe.lrange(self._key("events", answer), after, -1).execute()
        if state is None:
            return None, []
        return state.decode(), [(after + i + 1, data) for i, data in enumerate(events)]

    async def owner(self, answer: str) -> str | None:
        async with self._redis.pipeline(transaction=True) as pipe:
            exists, owner = await pipe.exists(self._key("answer", answer)).hget(
                self._key("answer", answer), "owner").execute()
        return (owner or b"").decode() if exists else None

    async def touch(self, answer: str) -> None:
        await self._set_if_exists(keys=[self._key("answer", answer)], args=["seen", time.time()])

    async def seen(self, answer: str) -> tuple[float, bool]:
        seen, stop = await self._redis.hmget(self._key("answer", answer), ["seen", "stop"])
        return (float(seen), stop == b"1") if seen is not None else (0.0, True)

    async def ask_stop(self, answer: str, owner: str | None = None) -> bool:
        args = ["stop", 1] + ([owner] if owner is not None else [])
        return bool(await self._set_if_exists(keys=[self._key("answer", answer)], args=args))

    async def flush(self, opens: list[tuple[str, float, str]],
                    appends: list[tuple[str, int, list[bytes]]],
                    finishes: list[tuple[str, float]]) -> dict[str, Exception]:
        now = time.time()
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for answer, ttl, owner in opens:
                    key = self._key("answer", answer)
                    pipe.hset(key, mapping={"state": "running", "seen": now, "stop": 0,
                                            "owner": owner})
                    pipe.pexpire(key, int(ttl * 1000) + 1000)
                for answer, _, events in appends:  # in order: list index + 1 is the seq
                    key = self._key("events", answer)
                    pipe.rpush(key, *events).expire(key, 3600)
                for answer, keep in finishes:
                    keys = self._key("answer", answer), self._key("events", answer)
                    if keep <= 0:
                        pipe.delete(*keys)
                        continue
                    pipe.hset(keys[0], "state", "finished")
                    for key in keys:
                        pipe.pexpire(key, int(keep * 1000))
                await pipe.execute()
        except Exception as exc:  # MULTI/EXEC: none of it was written
            return {a: exc for a in [*(a for a, _, _ in opens), *(a for a, _, _ in appends),
                                     *(a for a, _ in finishes)]}
        return {}

    async def watch(self, answers: list[str], lease: float | None = None
                    ) -> dict[str, tuple[float, bool]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for answer in answers:
                key = self._key("answer", answer)
                pipe.hmget(key, ["seen", "stop", "state"])
            rows = await pipe.execute()
            if lease is not None:
                for answer, (_, _, state) in zip(answers, rows, strict=True):
                    if state == b"running":
                        pipe.pexpire(self._key("answer", answer), int(lease * 1000))
                await pipe.execute()
        return {answer: (float(seen), stop == b"1") if seen is not None else (0.0, True)
                for answer, (seen, stop, _) in zip(answers, rows, strict=True)}

    async def close(self) -> None:
        await self._redis.aclose()
