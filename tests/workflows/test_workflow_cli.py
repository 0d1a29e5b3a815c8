"""``eventbus workflow list|show`` on what the engine's store recorded (real Redis, a private prefix)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from eventbus.workflow_engine import RedisStore

from .._databases import REDIS_URL
from ..cli._run import eventbus

pytestmark = pytest.mark.redis


async def test_list_and_show_a_failed_and_a_running_workflow(redis_prefix: str, tmp_path: Path) -> None:
    failed, running = str(uuid.uuid4()), str(uuid.uuid4())
    members = [[{"step": "1.0", "type": "t.b.v1"}], [{"step": "1.1", "type": "t.b.v1"}]]
    plan = {"next": [{"step": "0", "type": "t.a.v1"}, {"group": "1", "members": members}]}
    store = RedisStore(REDIS_URL, prefix=redis_prefix)
    now = time.time()
    for workflow_id in (failed, running):
        await store.started(workflow_id, plan=plan, on_error=[], started_at=now, steps=["0", "1.0", "1.1"])
        await store.completed(workflow_id, "0", {"state": "completed", "type": "t.a.v1", "attempt": 1,
                                                 "started_at": now, "finished_at": now + 0.25, "result_type": "t.r.v1"})
    await store.failed(failed, "1.1", {"state": "failed", "type": "t.b.v1", "attempt": 3, "message_id": "m-9",
                                       "reason": "handler_error", "error_type": "builtins.KeyError", "error": "'x'",
                                       "queue": "svc.t.b.v1.dlq", "failed_at": now + 1}, now + 1)
    await store.close()
    env = {"EVENTBUS_REDIS_URL": REDIS_URL}

    listed = eventbus("workflow", "list", "--json", "--prefix", redis_prefix, cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {row["id"]: row for row in map(json.loads, listed.stdout.splitlines())}
    assert rows[failed]["state"] == "failed" and rows[failed]["failed_step"] == "1.1"
    assert rows[running]["state"] == "running" and (rows[running]["steps"], rows[running]["completed"]) == (3, 1)

    only_failed = eventbus("workflow", "list", "--failed", "--json", "--prefix", redis_prefix, cwd=tmp_path, env=env)
    assert [json.loads(line)["id"] for line in only_failed.stdout.splitlines()] == [failed]

    shown = eventbus("workflow", "show", failed, "--prefix", redis_prefix, cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    for text in ("workflow " + failed, "failed", "1.1", "builtins.KeyError", "svc.t.b.v1.dlq", "attempt 3",
                 "→ t.r.v1", "250 ms", "1.0", "pending"):
        assert text in shown.stdout, (text, shown.stdout)

    unknown = eventbus("workflow", "show", str(uuid.uuid4()), "--prefix", redis_prefix, cwd=tmp_path, env=env)
    assert unknown.returncode != 0 and "not known" in unknown.stderr


@pytest.mark.broker
def test_cancel_sets_the_revocation_key_and_retry_refuses_an_unknown_workflow(redis_prefix: str,
                                                                              tmp_path: Path) -> None:
    import redis

    from .._vhosts import amqp_url, private_vhost

    workflow_id = f"cli-{uuid.uuid4()}"
    client = redis.Redis.from_url(REDIS_URL)
    env = {"EVENTBUS_REDIS_URL": REDIS_URL}
    try:
        with private_vhost("wf-cli") as vhost:
            env["EVENTBUS_URL"] = amqp_url(vhost)
            cancelled = eventbus("workflow", "cancel", workflow_id, "--store", REDIS_URL, cwd=tmp_path, env=env)
            assert cancelled.returncode == 0, cancelled.stderr
            assert client.exists(f"eventbus:revoked:{workflow_id}") == 1  # the revocation store's key (wire format)
            retried = eventbus("workflow", "retry", workflow_id, "--prefix", redis_prefix, cwd=tmp_path, env=env)
            assert retried.returncode != 0 and "not known" in retried.stderr
    finally:
        client.delete(f"eventbus:revoked:{workflow_id}")
