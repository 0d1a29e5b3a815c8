"""The workflow engine's state in Redis: chord joins (exactly once) and tracking, one Lua script each.

Why Redis: a join is one atomic script per member report (``HSETNX`` the result under its index,
``HLEN`` to count), keys expire natively (``EXPIRE``, renewed on every write), and it is what a
team leaving Celery already runs. Several engine processes share one Redis and compete safely:
every decision (count this member? fire now? is the workflow complete?) is taken inside a script.

Keys (``prefix`` defaults to ``eventbus:``; ``<id>`` is the workflow id)::

    <p>wf:<id>                 hash   state, plan, on_error, started_at, finished_at, failed_step,
                                      total (plan steps), done_in_plan (how many of them are done), ...
    <p>wf:<id>:steps           hash   step id -> JSON record (state, attempt, times, result type, error)
    <p>wf:<id>:done            set    steps with a step_completed report
    <p>wf:<id>:plan            set    the plan's step ids (without on_error steps)
    <p>wf:<id>:join:<g>        hash   index -> result JSON, while group <g> is being joined
    <p>wf:<id>:join:<g>:lease  string who is firing the join right now (SET NX PX)
    <p>wf:<id>:joins           hash   group -> JSON {size, counted, fired_at} once fired
    <p>workflows, <p>workflows:failed   sorted sets (score: time) for listing
    <p>revoked:<id>            string set by ``bus.cancel``; a join of such a workflow never fires
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = ["DEFAULT_TTL", "JoinOutcome", "RedisStore", "WorkflowStore"]

DEFAULT_TTL = 7 * 24 * 3600
Outcome = Literal["wait", "fire", "busy", "done", "revoked"]
Arg = bytes | str | int | float

# KEYS: results, joins, lease, revoked   ARGV: group, index, result, size, ttl, token, lease_ms
_JOIN = """
local ttl = tonumber(ARGV[5])
if redis.call('EXISTS', KEYS[4]) == 1 then return {'revoked', 0, 0, 0} end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {'done', 0, 0, 0} end
local added = redis.call('HSETNX', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ttl)
local count = redis.call('HLEN', KEYS[1])
if count < tonumber(ARGV[4]) then return {'wait', added, count, 0} end
if redis.call('SET', KEYS[3], ARGV[6], 'NX', 'PX', tonumber(ARGV[7])) then return {'fire', added, count, 0} end
return {'busy', added, count, redis.call('PTTL', KEYS[3])}
"""

# KEYS: results, joins, lease   ARGV: group, record JSON, token, ttl
_FIRED = """
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
return 1
"""

# KEYS: meta, all-index   ARGV: now, ttl, id
# (shared prologue: the workflow exists and is indexed; state running unless set)
_TOUCH = """
local ttl = tonumber(ARGV[2])
if redis.call('HSETNX', KEYS[1], 'state', 'running') == 1 then
  redis.call('HSET', KEYS[1], 'first_seen', ARGV[1])
  redis.call('ZADD', KEYS[2], 'NX', ARGV[1], ARGV[3])
end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[1])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[1]) - ttl)
redis.call('EXPIRE', KEYS[2], ttl)
"""

_COMPLETE_CHECK = """
local function complete_if_done(meta, plan, done, now)
  local total = redis.call('HGET', meta, 'total')
  if not total then return 0 end
  if tonumber(redis.call('HGET', meta, 'done_in_plan') or '0') < tonumber(total) then return 0 end
  if redis.call('HGET', meta, 'state') ~= 'running' then return 0 end
  redis.call('HSET', meta, 'state', 'completed', 'finished_at', now)
  return 1
end
"""

# KEYS: meta, all, plan, done   ARGV: now, ttl, id, plan JSON, on_error JSON, started_at, step ids...
_STARTED = _COMPLETE_CHECK + """
local ttl = tonumber(ARGV[2])
if redis.call('HSETNX', KEYS[1], 'state', 'running') == 1 then
  redis.call('HSET', KEYS[1], 'first_seen', ARGV[1])
end
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[3])
redis.call('HSET', KEYS[1], 'plan', ARGV[4], 'on_error', ARGV[5], 'started_at', ARGV[6], 'updated_at', ARGV[1])
redis.call('DEL', KEYS[3])
local n = 0
for i = 7, #ARGV, 1000 do
  local last = math.min(i + 999, #ARGV)
  n = n + redis.call('SADD', KEYS[3], unpack(ARGV, i, last))
end
redis.call('HSET', KEYS[1], 'total', #ARGV - 6)
-- reports may have come first: count once here what is done of the plan; later reports add one each
redis.call('HSET', KEYS[1], 'done_in_plan', redis.call('SINTERCARD', 2, KEYS[3], KEYS[4]))
for _, key in ipairs({KEYS[1], KEYS[2], KEYS[3], KEYS[4]}) do redis.call('EXPIRE', key, ttl) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[1]) - ttl)
return complete_if_done(KEYS[1], KEYS[3], KEYS[4], ARGV[1])
"""

# KEYS: meta, all, plan, done, steps   ARGV: now, ttl, id, step, record JSON
_COMPLETED = _COMPLETE_CHECK + _TOUCH + """
redis.call('HSET', KEYS[5], ARGV[4], ARGV[5])
if redis.call('SADD', KEYS[4], ARGV[4]) == 1 and redis.call('SISMEMBER', KEYS[3], ARGV[4]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'done_in_plan', 1)
end
redis.call('EXPIRE', KEYS[5], ttl)
redis.call('EXPIRE', KEYS[4], ttl)
redis.call('EXPIRE', KEYS[3], ttl)
return complete_if_done(KEYS[1], KEYS[3], KEYS[4], ARGV[1])
"""

# KEYS: meta, all, failed-index, steps   ARGV: now, ttl, id, step, record JSON, failed_at
# A failed report older than the step's last retry is a stale redelivery: it changes nothing.
_FAILED = _TOUCH + """
local old = redis.call('HGET', KEYS[4], ARGV[4])
if old then
  local record = cjson.decode(old)
  if record['retried_at'] and tonumber(record['retried_at']) >= tonumber(ARGV[6]) then return 0 end
  if record['state'] == 'completed' then return 0 end
end
redis.call('HSET', KEYS[4], ARGV[4], ARGV[5])
redis.call('EXPIRE', KEYS[4], ttl)
if redis.call('HGET', KEYS[1], 'state') ~= 'cancelled' then
  redis.call('HSET', KEYS[1], 'state', 'failed', 'failed_step', ARGV[4], 'finished_at', ARGV[6])
  redis.call('ZADD', KEYS[3], ARGV[6], ARGV[3])
  redis.call('EXPIRE', KEYS[3], ttl)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', tonumber(ARGV[1]) - ttl)
end
return 1
"""

# KEYS: meta, all, failed-index   ARGV: now, ttl, id, cancelled_at
_CANCELLED = _TOUCH + """
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'cancelled_at', ARGV[4], 'finished_at', ARGV[4])
redis.call('ZREM', KEYS[3], ARGV[3])
return 1
"""

# KEYS: meta, failed-index, steps   ARGV: now, ttl, id, step
_RETRYING = """
local old = redis.call('HGET', KEYS[3], ARGV[4])
if not old then return 0 end
local record = cjson.decode(old)
record['state'] = 'retrying'
record['retried_at'] = tonumber(ARGV[1])
redis.call('HSET', KEYS[3], ARGV[4], cjson.encode(record))
redis.call('HSET', KEYS[1], 'state', 'running', 'updated_at', ARGV[1])
redis.call('HDEL', KEYS[1], 'failed_step', 'finished_at')
redis.call('ZREM', KEYS[2], ARGV[3])
for _, key in ipairs({KEYS[1], KEYS[3]}) do redis.call('EXPIRE', key, tonumber(ARGV[2])) end
return 1
"""


@dataclass(frozen=True, slots=True)
class JoinOutcome:
    """What counting one member did: ``fire`` means this caller holds the lease and must fire."""

    outcome: Outcome
    added: bool
    counted: int
    lease_ms: int = 0


class WorkflowStore(Protocol):
    """What the engine and ``Workflows`` need of a store: ``RedisStore``, or ``MemoryWorkflowStore`` in tests."""

    async def close(self) -> None: ...
    async def count(self, workflow_id: str, group: str, index: int, size: int, result_json: bytes, *,
                    token: str, lease_ms: int) -> JoinOutcome: ...
    async def results(self, workflow_id: str, group: str, size: int) -> list[Any]: ...
    async def mark_fired(self, workflow_id: str, group: str, *, token: str, size: int, counted: int,
                         callbacks: Iterable[str]) -> None: ...
    async def release(self, workflow_id: str, group: str, token: str) -> None: ...
    async def started(self, workflow_id: str, *, plan: Any, on_error: Any, started_at: float,
                      steps: Iterable[str]) -> bool: ...
    async def completed(self, workflow_id: str, step: str, record: Mapping[str, Any]) -> bool: ...
    async def failed(self, workflow_id: str, step: str, record: Mapping[str, Any], failed_at: float) -> bool: ...
    async def cancelled(self, workflow_id: str, cancelled_at: float) -> None: ...
    async def retrying(self, workflow_id: str, step: str) -> bool: ...
    async def ids(self, *, failed: bool, limit: int) -> list[str]: ...
    async def load(self, workflow_id: str
                   ) -> tuple[dict[str, str], dict[str, dict[str, Any]], dict[str, Any]] | None: ...
    async def metas(self, ids: list[str]) -> list[dict[str, str] | None]: ...
    async def forget(self, ids: list[str]) -> None: ...


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Pipelined:
    """Script calls made in one turn of the event loop go to Redis in one round trip.

    An engine handles up to ``prefetch`` reports at once and each costs a script call or two: sent one
    by one, they cost a connection checkout, a write and a read each, which made redis-py the biggest
    item in the engine's CPU (bench/chord.py --profile). Calls queue here and leave together as one
    non-transactional pipeline of ``EVALSHA``s (each script is still atomic on its own); a script
    Redis no longer has (``NOSCRIPT``, after a restart) is run again on its own, which loads it.
    """

    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self._queued: list[tuple[Any, list[Any], list[Any], asyncio.Future[Any]]] = []

    def call(self, script: Any, keys: list[Any], args: list[Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._flush)
        self._queued.append((script, keys, args, future))
        return future

    def _flush(self) -> None:
        batch, self._queued = self._queued, []
        task = asyncio.get_running_loop().create_task(self._run(batch))
        task.add_done_callback(lambda done: done.cancelled() or done.exception())  # failures go to the futures

    async def _run(self, batch: list[tuple[Any, list[Any], list[Any], asyncio.Future[Any]]]) -> None:
        try:
            if len(batch) == 1:
                script, keys, args, future = batch[0]
                results: list[Any] = [await script(keys=keys, args=args)]
            else:
                pipe = self._redis.pipeline(transaction=False)
                for script, keys, args, _ in batch:
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                results = await pipe.execute(raise_on_error=False)
                for i, (script, keys, args, _) in enumerate(batch):
                    if isinstance(results[i], Exception) and "NOSCRIPT" in str(results[i]):
                        results[i] = await script(keys=keys, args=args)
        except BaseException as exc:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            raise
        for (*_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


class RedisStore:
    """The engine's keys and scripts on one Redis (``redis.asyncio``); see the module docstring."""

    def __init__(self, redis_url: str, *, prefix: str = "eventbus:", ttl: int = DEFAULT_TTL,
                 client: Any = None, revoked_prefix: str | None = None, max_connections: int = 16) -> None:
        import redis.asyncio as aioredis

        self.prefix = prefix
        self.revoked_prefix = revoked_prefix if revoked_prefix is not None else f"{prefix}revoked:"
        self.ttl = int(ttl)
        if client is None:
            # A bounded pool that waits for a free connection: a worker runs up to ``prefetch`` reports
            # at once, and one connection per report would swamp a Redis shared with everything else.
            pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=max_connections, timeout=30)
            client = aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes it
        self.redis = client
        self._join = self.redis.register_script(_JOIN)
        self._fired = self.redis.register_script(_FIRED)
        self._started = self.redis.register_script(_STARTED)
        self._completed = self.redis.register_script(_COMPLETED)
        self._failed = self.redis.register_script(_FAILED)
        self._cancelled = self.redis.register_script(_CANCELLED)
        self._retrying = self.redis.register_script(_RETRYING)
        self._pipelined = _Pipelined(self.redis)

    async def close(self) -> None:
        await self.redis.aclose()

    # -- key names --------------------------------------------------------------------------------

    def key(self, workflow_id: str, *parts: str) -> str:
        return ":".join((f"{self.prefix}wf", workflow_id, *parts))

    @property
    def index(self) -> str:
        return f"{self.prefix}workflows"

    @property
    def failed_index(self) -> str:
        return f"{self.prefix}workflows:failed"

    def revoked(self, workflow_id: str) -> str:
        return f"{self.revoked_prefix}{workflow_id}"

    # -- joins --------------------------------------------------------------------------------------

    async def count(self, workflow_id: str, group: str, index: int, size: int, result_json: bytes, *,
                    token: str, lease_ms: int) -> JoinOutcome:
        """Store member ``index``'s result unless it has one, and say what to do (one script)."""
        keys = [self.key(workflow_id, "join", group), self.key(workflow_id, "joins"),
                self.key(workflow_id, "join", group, "lease"), self.revoked(workflow_id)]
        args: list[Arg] = [group, index, result_json, size, self.ttl, token, lease_ms]
        reply = await self._pipelined.call(self._join, keys, args)
        return JoinOutcome(_text(reply[0]), bool(reply[1]), int(reply[2]), int(reply[3]))  # type: ignore[arg-type]

    async def results(self, workflow_id: str, group: str, size: int) -> list[Any]:
        """The members' results in index order (every index 0..size-1 is present once fired)."""
        raw = await self.redis.hgetall(self.key(workflow_id, "join", group))
        by_index = {int(k): v for k, v in raw.items()}
        return [json.loads(by_index[i]) for i in range(size)]

    async def mark_fired(self, workflow_id: str, group: str, *, token: str, size: int, counted: int,
                         callbacks: Iterable[str]) -> None:
        record = json.dumps({"size": size, "counted": counted, "fired_at": time.time(), "callbacks": list(callbacks)})
        keys = [self.key(workflow_id, "join", group), self.key(workflow_id, "joins"),
                self.key(workflow_id, "join", group, "lease")]
        await self._fired(keys=keys, args=[group, record, token, self.ttl])

    async def release(self, workflow_id: str, group: str, token: str) -> None:
        """Give the lease back without firing (the publish failed; a redelivery fires)."""
        key = self.key(workflow_id, "join", group, "lease")
        if _text(await self.redis.get(key) or b"") == token:
            await self.redis.delete(key)

    # -- tracking -------------------------------------------------------------------------------------

    async def started(self, workflow_id: str, *, plan: Any, on_error: Any, started_at: float,
                      steps: Iterable[str]) -> bool:
        keys = [self.key(workflow_id), self.index, self.key(workflow_id, "plan"), self.key(workflow_id, "done")]
        args: list[Arg] = [time.time(), self.ttl, workflow_id, json.dumps(plan), json.dumps(on_error), started_at,
                           *steps]
        return bool(await self._started(keys=keys, args=args))

    async def completed(self, workflow_id: str, step: str, record: Mapping[str, Any]) -> bool:
        """Record a step_completed report; True when it completed the workflow."""
        keys = [self.key(workflow_id), self.index, self.key(workflow_id, "plan"), self.key(workflow_id, "done"),
                self.key(workflow_id, "steps")]
        args: list[Arg] = [time.time(), self.ttl, workflow_id, step, json.dumps(record)]
        return bool(await self._pipelined.call(self._completed, keys, args))

    async def failed(self, workflow_id: str, step: str, record: Mapping[str, Any], failed_at: float) -> bool:
        keys = [self.key(workflow_id), self.index, self.failed_index, self.key(workflow_id, "steps")]
        args: list[Arg] = [time.time(), self.ttl, workflow_id, step, json.dumps(record), failed_at]
        return bool(await self._failed(keys=keys, args=args))

    async def cancelled(self, workflow_id: str, cancelled_at: float) -> None:
        keys = [self.key(workflow_id), self.index, self.failed_index]
        await self._cancelled(keys=keys, args=[time.time(), self.ttl, workflow_id, cancelled_at])

    async def retrying(self, workflow_id: str, step: str) -> bool:
        keys = [self.key(workflow_id), self.failed_index, self.key(workflow_id, "steps")]
        return bool(await self._retrying(keys=keys, args=[time.time(), self.ttl, workflow_id, step]))

    # -- reading ----------------------------------------------------------------------------------------

    async def ids(self, *, failed: bool, limit: int) -> list[str]:
        index = self.failed_index if failed else self.index
        return [_text(i) for i in await self.redis.zrevrange(index, 0, max(0, limit - 1))]

    async def load(self, workflow_id: str) -> tuple[dict[str, str], dict[str, dict[str, Any]], dict[str, Any]] | None:
        """(meta, step records, fired joins) of a workflow, or None when it is unknown or expired."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.key(workflow_id))
            pipe.hgetall(self.key(workflow_id, "steps"))
            pipe.hgetall(self.key(workflow_id, "joins"))
            meta, steps, joins = await pipe.execute()
        if not meta:
            return None
        return ({_text(k): _text(v) for k, v in meta.items()},
                {_text(k): json.loads(v) for k, v in steps.items()},
                {_text(k): json.loads(v) for k, v in joins.items()})

    async def metas(self, ids: list[str]) -> list[dict[str, str] | None]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for workflow_id in ids:
                pipe.hmget(self.key(workflow_id), "state", "started_at", "first_seen", "finished_at",
                           "failed_step", "total")
                pipe.scard(self.key(workflow_id, "done"))
            replies = await pipe.execute()
        out: list[dict[str, str] | None] = []
        names = ("state", "started_at", "first_seen", "finished_at", "failed_step", "total")
        for i in range(len(ids)):
            values, done = replies[2 * i], replies[2 * i + 1]
            if values[0] is None:
                out.append(None)
                continue
            meta = {n: _text(v) for n, v in zip(names, values, strict=True) if v is not None}
            meta["done"] = str(done)
            out.append(meta)
        return out

    async def forget(self, ids: list[str]) -> None:
        """Drop expired workflows from the indexes."""
        if ids:
            await self.redis.zrem(self.index, *ids)
            await self.redis.zrem(self.failed_index, *ids)
