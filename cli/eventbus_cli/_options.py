"""Options shared by the commands that talk to the broker."""

from __future__ import annotations

import click

from eventbus import DEFAULT_URL

__all__ = ["service_option", "url_option"]

url_option = click.option(
    "--url",
    envvar="EVENTBUS_URL",
    default=DEFAULT_URL,
    show_default="EVENTBUS_URL or the local RabbitMQ",
    help="AMQP URL of the broker.",
)
service_option = click.option(
    "--service",
    envvar="EVENTBUS_SERVICE",
    default="eventbus-cli",
    show_default=True,
    help="Service name: the CloudEvents source and the prefix of queue names.",
)
