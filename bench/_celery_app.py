"""The Celery peer of ``bench/run.py``: one task that validates the event with the same pydantic model.

Its worker runs as ``celery -A bench._celery_app worker -P prefork -c 2`` from the repository root.
The queue is private (``bench-celery`` on exchange ``bench.celery``), quorum like the others.
"""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from eventbus_contracts import ConversationEndedV1

QUEUE = "bench-celery"
app = Celery("bench", broker="amqp://guest:guest@127.0.0.1:5672//")
app.conf.update(
    task_queues=[Queue(QUEUE, Exchange("bench.celery", type="direct"), routing_key=QUEUE,
                       queue_arguments={"x-queue-type": "quorum"})],
    task_default_queue=QUEUE,
    task_default_exchange="bench.celery",
    task_default_routing_key=QUEUE,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.conversation_ended")
def conversation_ended(payload: dict) -> None:
    ConversationEndedV1.model_validate(payload)
