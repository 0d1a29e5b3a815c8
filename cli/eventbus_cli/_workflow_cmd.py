"""``eventbus workflow list|show|retry``: the workflows the engine tracked in Redis, from the command line.

``list`` and ``show`` read Redis only; ``retry`` also needs the broker (``--url``): it replays the
failed step's parked message from its DLQ. (``workflow cancel`` is ``_revoke_cmd``'s, added by ``main``.)
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import click
import orjson
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from eventbus import BusSettings, ConfigurationError
from eventbus.workflow_engine import StepView, Workflows, WorkflowView

from ._errors import fail, one_line_errors
from ._options import url_option
from ._tables import console

__all__ = ["workflow"]

T = TypeVar("T")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_STYLE = {"completed": "green", "failed": "bold red", "running": "yellow", "retrying": "yellow",
          "cancelled": "magenta", "pending": "dim"}

redis_option = click.option("--redis", "redis_url", envvar="EVENTBUS_REDIS_URL", default=DEFAULT_REDIS_URL,
                            show_default="EVENTBUS_REDIS_URL or the local Redis",
                            help="Redis URL of the workflow engine.")
prefix_option = click.option("--prefix", default="eventbus:", show_default=True,
                             help="The engine's key prefix (WorkflowEngine(prefix=...)).")


def _run(redis_url: str, prefix: str, work: Callable[[Workflows], Awaitable[T]], url: str | None = None) -> T:
    async def run() -> T:
        settings = BusSettings(service="eventbus-workflow", urls=(url,)) if url else None
        async with Workflows(redis_url, settings=settings, prefix=prefix) as workflows:
            return await work(workflows)

    from redis.exceptions import ConnectionError as RedisConnectionError

    try:
        return asyncio.run(run())
    except ConfigurationError as exc:
        fail(str(exc))
        raise  # unreachable: fail() exits
    except RedisConnectionError as exc:
        fail(f"cannot reach Redis at {redis_url}: {exc}")
        raise


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _duration(step: StepView) -> str:
    if step.started_at and step.finished_at:
        return f"{(step.finished_at - step.started_at).total_seconds() * 1000:.0f} ms"
    return ""


@click.group()
def workflow() -> None:
    """Workflows (chain, group, chord): list them, show one as a tree, retry a failed one."""


@workflow.command("list")
@click.option("--failed", is_flag=True, help="Only failed workflows.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per workflow.")
@redis_option
@prefix_option
@one_line_errors
def list_(failed: bool, limit: int, as_json: bool, redis_url: str, prefix: str) -> None:
    """The newest workflows (or the failed ones), with their state and progress."""
    found = _run(redis_url, prefix, lambda w: w.list(failed=failed, limit=limit))
    if as_json:
        for item in found:
            click.echo(orjson.dumps({"id": item.id, "state": item.state, "started_at": item.started_at,
                                     "finished_at": item.finished_at, "steps": item.steps,
                                     "completed": item.completed, "failed_step": item.failed_step}).decode())
        return
    table = Table("workflow", "state", "started", "finished", "steps done", "failed step",
                  title=f"{len(found)} {'failed ' if failed else ''}workflow(s)")
    for item in found:
        progress = f"{item.completed}/{item.steps}" if item.steps is not None else f"{item.completed}/?"
        table.add_row(item.id, Text(item.state, style=_STYLE.get(item.state, "")), _when(item.started_at),
                      _when(item.finished_at), progress, item.failed_step or "")
    console().print(table)


def _leaf(step: StepView) -> Text:
    text = Text(f"{step.step} ", style="bold")
    text.append(step.type or "", style="cyan")
    text.append(f"  {step.state}", style=_STYLE.get(step.state, ""))
    if step.attempt:
        text.append(f"  attempt {step.attempt}")
    duration = _duration(step)
    if duration:
        text.append(f"  {duration}", style="dim")
    if step.result_type:
        text.append(f"  → {step.result_type}", style="green")
    if step.state == "failed":
        text.append(f"\n{step.error_type}: {step.error}  (parked in {step.queue or '-'}, {step.reason})", style="red")
    return text


def _group_label(name: str, view: WorkflowView, kind: str = "group") -> str:
    join = view.joins.get(name)
    label = f"{kind} {name}".rstrip()
    if join is not None:
        label += f"  joined {join.counted}/{join.size} at {_when(join.fired_at)}"
    return label


def _grow(tree: Tree, node: Any, view: WorkflowView) -> None:
    """Add a plan node (``kind`` step, chain, group or chord; any other list is a chain, object with
    ``step`` a step, with ``members`` a group)."""
    if isinstance(node, dict) and node.get("kind") == "chain":
        node = node.get("steps", [])
    if isinstance(node, list):
        branch = tree.add("chain", style="dim") if len(node) > 1 else tree
        for item in node:
            _grow(branch, item, view)
        return
    if not isinstance(node, dict):
        return
    step = node.get("step")
    if isinstance(step, str):
        found = view.steps.get(step) or StepView(step, "pending")
        if found.type is None and isinstance(node.get("type"), str):
            found = dataclasses.replace(found, type=node["type"])
        tree.add(_leaf(found))
        return
    if "members" in node:
        name = str(node.get("group", ""))
        if node.get("kind") == "chord":
            branch = tree.add(_group_label(name, view, "chord"), style="blue")
            members = branch.add("group", style="blue")
            callback = branch.add("callback", style="blue")
            for member in node["members"]:
                _grow(members, member, view)
            _grow(callback, node.get("callback"), view)
            return
        branch = tree.add(_group_label(name, view), style="blue")
        for member in node["members"]:
            _grow(branch, member, view)
        return
    for key, value in node.items():
        if isinstance(value, (list, dict)):
            _grow(tree.add(str(key), style="blue"), value, view)


@workflow.command()
@click.argument("workflow_id")
@click.option("--json", "as_json", is_flag=True, help="The workflow as JSON.")
@redis_option
@prefix_option
@one_line_errors
def show(workflow_id: str, as_json: bool, redis_url: str, prefix: str) -> None:
    """The tree of WORKFLOW_ID's steps with state, attempts, timings and result types."""
    view = _run(redis_url, prefix, lambda w: w.show(workflow_id))
    if view is None:
        fail(f"workflow {workflow_id} is not known (or has expired)")
        return
    if as_json:
        click.echo(orjson.dumps({"id": view.id, "state": view.state, "started_at": view.started_at,
                                 "finished_at": view.finished_at, "plan": view.plan,
                                 "steps": {k: _step_json(v) for k, v in view.steps.items()},
                                 "joins": {k: vars_of(v) for k, v in view.joins.items()}}).decode())
        return
    tree = Tree(Text(f"workflow {view.id}  ", style="bold").append(view.state, style=_STYLE.get(view.state, "")))
    if view.plan is None:
        tree.add("(no started report yet)", style="dim")
    else:
        _grow(tree, view.plan, view)
    planned = set(view.plan_steps)
    extra = [s for s in view.steps.values() if s.step not in planned]
    if extra:
        branch = tree.add("on_error", style="red")
        for step in extra:
            branch.add(_leaf(step))
    console().print(tree)


def _step_json(step: StepView) -> dict[str, Any]:
    return vars_of(step)


def vars_of(value: Any) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__slots__}


@workflow.command()
@click.argument("workflow_id")
@redis_option
@prefix_option
@url_option
@one_line_errors
def retry(workflow_id: str, redis_url: str, prefix: str, url: str) -> None:
    """Replay WORKFLOW_ID's failed step(s) from their DLQ and mark it running again."""
    steps = _run(redis_url, prefix, lambda w: w.retry(workflow_id), url=url)
    click.echo(f"workflow {workflow_id}: replayed step(s) {', '.join(steps)}")

