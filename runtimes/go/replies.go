package eventbus

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
)

// The answering side of request-reply (docs/wire-format.md, "Request-reply"), as the Python
// SDK's eventbus/_replies.py: whoever settles a request (a delivery with reply_to) answers it
// once, on the default exchange with routing key = its reply_to and the same correlation id:
//
//	ok     eventbus-reply-status: ok, the handler's result as a CloudEvent of its contract (or
//	       an empty body when it returned nil); sent after the handler succeeded, before the ack
//	error  eventbus-reply-status: error, eventbus-error-type, eventbus-error; empty body; sent
//	       once the park copy is confirmed (last attempt failed, or bad input)
//
// A retry answers nothing (the retry copy keeps reply_to; its last attempt answers); the park
// copy drops reply_to. Replies are not mandatory: RabbitMQ returns a mandatory publish to a
// direct reply-to name even when it delivers it, and a requester that is gone cannot be answered.

// ReplyStatusHeader is ok or error on a reply.
const ReplyStatusHeader = "eventbus-reply-status"

// DirectReplyTo is RabbitMQ's direct reply-to pseudo-queue.
const DirectReplyTo = "amq.rabbitmq.reply-to"

// okReply is the reply carrying result (a struct of a registered contract, or nil); a result
// that is neither is answered as an error, so the caller learns at once instead of timing out.
func (b *Bus) okReply(d *amqp.Delivery, result any) *outgoing {
	if result == nil {
		return b.reply(d, amqp.Table{ReplyStatusHeader: "ok"}, nil)
	}
	contract, value, ok := contractOfResult(result)
	if !ok {
		return b.errorReply(d, "ContractError", fmt.Sprintf("the handler returned a %T, not a struct of a registered contract", result))
	}
	body, err := contract.encodeAny(value)
	if err != nil {
		return b.errorReply(d, "EventValidationError", err.Error())
	}
	o, err := b.outgoing(contract.EventType(), "", d.ReplyTo, contract.schemaID(), body, PublishOptions{})
	if err != nil {
		return b.errorReply(d, fmt.Sprintf("%T", err), err.Error())
	}
	o.message.Headers[ReplyStatusHeader] = "ok"
	o.message.CorrelationId, o.optional, o.label = d.CorrelationId, true, "reply"
	return o
}

// errorReply tells the requester that its request failed for good, and why.
func (b *Bus) errorReply(d *amqp.Delivery, errorType, message string) *outgoing {
	return b.reply(d, amqp.Table{ReplyStatusHeader: "error", ErrorTypeHeader: errorType, ErrorHeader: shortText(message)}, nil)
}

func (b *Bus) reply(d *amqp.Delivery, headers amqp.Table, body []byte) *outgoing {
	return &outgoing{exchange: "", routingKey: d.ReplyTo, label: "reply", optional: true, message: amqp.Publishing{
		MessageId: uuid.NewString(), CorrelationId: d.CorrelationId, AppId: b.options.Source, Headers: headers, Body: body,
	}}
}

// answer sends a reply, best effort: a reply is never a reason to redeliver the request.
func (b *Bus) answer(o *outgoing) {
	if err := b.publisher.publish(context.Background(), []*outgoing{o})[0]; err != nil {
		b.options.Logger.Warn("could not send a reply", "correlation_id", o.message.CorrelationId, "error", err.Error())
	}
}
