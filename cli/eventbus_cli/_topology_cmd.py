"""``eventbus topology plan|apply|delete``: the broker side of the contracts, from creation to removal.

``apply`` declares (AMQP, idempotent): every contract's exchange, and with ``--service`` the queues
that service's consumer would declare, so events published before it first starts are kept.
``plan`` shows the same, marks what already exists, and lists what the vhost holds that no
contract or registered consumer explains. ``delete --service`` removes a service's queues, their
DLQs and with them their bindings, and refuses while messages wait in them. ``plan`` and
``delete`` list the vhost through the management HTTP API (``_management.py``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from eventbus import BusSettings
from eventbus.transports._amqp import ChannelClosedError
from eventbus.transports._broker import apply as apply_topology
from eventbus.transports._broker import connect, declare_delay_topology, declare_queue

from ._errors import EXIT_FINDINGS, fail, one_line_errors
from ._management import ManagementError, management_for
from ._options import contracts_option, current_project, project_registry, url_option
from ._topology_plan import Plan, QueueType, plan_topology, read_consumers, service_queues, unexplained

__all__ = ["topology"]

_services_option = click.option(
    "--service", "services", multiple=True,
    help="Also the queues of this registered consumer (consumers.json), as its consumer declares them (repeatable).",
)
_queue_type_option = click.option(
    "--queue-type", type=click.Choice(["quorum", "classic"]), default="quorum", show_default=True,
    help="The queue type the service's bus uses (BusSettings.queue_type); other arguments would not match.",
)


def _plan(root: Path | None, services: tuple[str, ...], queue_type: QueueType) -> tuple[Plan, dict[str, set[str]]]:
    registry = project_registry(root)
    consumers = read_consumers(root or current_project().contracts_dir)
    try:
        return plan_topology(registry, consumers, services, queue_type), consumers
    except ValueError as exc:
        fail(str(exc))
        raise  # unreachable


def _settings(url: str) -> BusSettings:
    return BusSettings(service="eventbus-topology", urls=(url,))


@click.group()
def topology() -> None:
    """Broker topology derived from the contracts: plan, apply, delete."""


@topology.command("apply")
@_services_option
@_queue_type_option
@contracts_option
@url_option
@one_line_errors
def apply(services: tuple[str, ...], queue_type: QueueType, root: Path | None, url: str) -> None:
    """Declare one durable topic exchange per domain (and the queues of --service); safe to repeat."""
    plan, _ = _plan(root, services, queue_type)
    asyncio.run(_apply(url, plan))
    for exchange in plan.exchanges:
        click.echo(f"exchange {exchange.name} (topic, durable): {', '.join(plan.types_by_exchange[exchange.name])}")
    for queue in plan.queues:
        click.echo(f"queue {queue.name} ({queue.arguments.get('x-queue-type')}, durable)")


@topology.command("plan")
@_services_option
@_queue_type_option
@contracts_option
@url_option
@one_line_errors
def plan_(services: tuple[str, ...], queue_type: QueueType, root: Path | None, url: str) -> None:
    """What apply would declare ('+' missing, '=' exists) and what the vhost holds that nothing explains.

    Exit 1 when something is unexplained. Needs RabbitMQ's management plugin to list the vhost.
    """
    plan, consumers = _plan(root, services, queue_type)
    broker = management_for(url)
    try:
        queues, exchanges = broker.queues(), broker.exchanges()
    except ManagementError as exc:
        for exchange in plan.exchanges:
            click.echo(f"  exchange {exchange.name} (topic)")
        for queue in plan.queues:
            click.echo(f"  queue    {queue.name}")
        fail(f"cannot compare with the broker: {exc}")
    click.echo(f"apply would declare (vhost {broker.vhost!r}):")
    for exchange in plan.exchanges:
        click.echo(f"  {'=' if exchange.name in exchanges else '+'} exchange {exchange.name} (topic): "
                   f"{', '.join(plan.types_by_exchange[exchange.name])}")
    for queue in plan.queues:
        click.echo(f"  {'=' if queue.name in queues else '+'} queue    {queue.name} "
                   f"({queue.arguments.get('x-queue-type')})")
    strays = unexplained(project_registry(root), consumers, exchanges, queues)
    if not strays:
        click.echo("nothing else on the broker: every exchange and queue is explained")
        return
    click.echo("on the broker, explained by no contract or registered consumer:")
    for stray in strays:
        waiting = f", {stray.messages} message(s) waiting" if stray.kind == "queue" else ""
        click.echo(f"  ? {stray.kind:8} {stray.name}: {stray.reason}{waiting}")
    fail(f"{len(strays)} unexplained object(s): remove a stopped service's queues with "
         "'eventbus topology delete --service NAME'", EXIT_FINDINGS)


async def _apply(url: str, plan: Plan) -> None:
    connection = await connect(_settings(url), "topology")
    try:
        await apply_topology(connection, plan.exchanges, ())
        if plan.queues:
            await declare_delay_topology(connection)  # consumer queues are bound to its delivery exchange
            for queue in plan.queues:
                await declare_queue(connection, queue)
            await apply_topology(connection, (), plan.bindings)
    finally:
        await connection.close()


async def _queue_counts(url: str, names: list[str]) -> dict[str, tuple[int, int]]:
    """(messages, consumers) of each of ``names`` that exists."""
    connection = await connect(_settings(url), "topology")
    found: dict[str, tuple[int, int]] = {}
    try:
        for name in names:
            channel = await connection.channel()
            try:
                reply = await channel.queue_declare(name, passive=True)
                found[name] = (reply.message_count or 0, reply.consumer_count or 0)
            except ChannelClosedError as exc:
                if exc.code != 404:
                    raise
            finally:
                await channel.close()
    finally:
        await connection.close()
    return found


async def _delete_queues(url: str, names: list[str]) -> None:
    connection = await connect(_settings(url), "topology")
    try:
        channel = await connection.channel()
        for name in names:
            await channel.queue_delete(name)
    finally:
        await connection.close()


def _queue_names(service: str, url: str, root: Path | None) -> list[str]:
    """The service's queues: listed by the management API, else derived from the contracts."""
    try:
        return service_queues(service, management_for(url).queues())
    except ManagementError as exc:
        click.echo(f"note: {exc}; looking only for the queues of the current contracts", err=True)
        names = [f"{service}.{c.type}" for c in project_registry(root)]
        return service_queues(service, names + [f"{name}.dlq" for name in names])


@topology.command("delete")
@click.option("--service", required=True, help="The service whose queues (<service>.<type> and .dlq) go.")
@click.option("--force", is_flag=True, help="Delete even when messages wait or a consumer is attached.")
@contracts_option
@url_option
@one_line_errors
def delete(service: str, force: bool, root: Path | None, url: str) -> None:
    """Delete a stopped service's queues, their DLQs and their bindings.

    Refuses while messages wait in them or a consumer is attached, and says how many, unless --force.
    """
    names = _queue_names(service, url, root)
    found = asyncio.run(_queue_counts(url, names))
    if not found:
        click.echo(f"no queues of service {service!r} on the broker: nothing to delete")
        return
    waiting = {name: counts[0] for name, counts in found.items() if counts[0]}
    consuming = {name: counts[1] for name, counts in found.items() if counts[1]}
    if consuming and not force:
        listed = ", ".join(f"{name} ({n})" for name, n in consuming.items())
        fail(f"{service} is still consuming: consumers on {listed}; stop it first (or --force); nothing deleted")
    if waiting and not force:
        listed = ", ".join(f"{name} ({n})" for name, n in waiting.items())
        fail(f"{sum(waiting.values())} message(s) wait in {listed}: replay or drain them first, or delete them "
             "with --force; nothing deleted")
    asyncio.run(_delete_queues(url, list(found)))
    for name, (messages, _) in found.items():
        click.echo(f"deleted queue {name} ({messages} message(s)) and its bindings")
