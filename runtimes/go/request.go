package eventbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
)

// The requesting side of request-reply, as the Python SDK's eventbus/_requests.py: a request
// goes out on the bus's publishing channel with reply_to = amq.rabbitmq.reply-to and a fresh
// correlation id; that channel consumes the pseudo-queue (no-ack) before its first request, and
// every reply is matched to its waiting caller by correlation id. No queue is declared for
// replies, so a request that times out leaves nothing behind on the broker, and a late reply
// is dropped here.

// ErrRequestTimeout is what a *RequestTimeoutError matches with errors.Is.
var ErrRequestTimeout = errors.New("eventbus: no reply in time")

// RequestTimeoutError is a request with no reply within its timeout (the handler may still
// run; its late reply is dropped).
type RequestTimeoutError struct {
	Timeout   time.Duration
	EventType string
	EventID   string
}

func (e *RequestTimeoutError) Error() string {
	return fmt.Sprintf("no reply to %s %s within %gs", e.EventType, e.EventID, e.Timeout.Seconds())
}

// Is makes errors.Is(err, ErrRequestTimeout) true.
func (e *RequestTimeoutError) Is(target error) bool { return target == ErrRequestTimeout }

// RemoteTaskError is a request whose handler failed after its last attempt, or that was
// parked at once: the remote error's type and message, as its responder named them.
type RemoteTaskError struct {
	RemoteType    string
	RemoteMessage string
	EventType     string
	EventID       string
}

func (e *RemoteTaskError) Error() string {
	return fmt.Sprintf("%s %s failed remotely: %s: %s", e.EventType, e.EventID, e.RemoteType, e.RemoteMessage)
}

// replies are the requests of one publisher waiting for their answers, by correlation id.
type replies struct {
	mu      sync.Mutex
	waiting map[string]chan amqp.Delivery
	on      *amqp.Channel // the channel consuming the direct reply-to pseudo-queue
	logger  Logger
}

func (r *replies) expect(correlationID string) chan amqp.Delivery {
	answer := make(chan amqp.Delivery, 1)
	r.mu.Lock()
	r.waiting[correlationID] = answer
	r.mu.Unlock()
	return answer
}

func (r *replies) forget(correlationID string) {
	r.mu.Lock()
	delete(r.waiting, correlationID)
	r.mu.Unlock()
}

func (r *replies) deliver(d amqp.Delivery) {
	r.mu.Lock()
	answer := r.waiting[d.CorrelationId]
	delete(r.waiting, d.CorrelationId)
	r.mu.Unlock()
	if answer == nil {
		r.logger.Debug("dropping a reply nobody waits for (it came too late)", "correlation_id", d.CorrelationId)
		return
	}
	answer <- d
}

// listen consumes the direct reply-to pseudo-queue on the current publishing channel, once per
// channel; called with p.mu held, before the request is published.
func (p *publisher) listen() error {
	if p.replies == nil {
		p.replies = &replies{waiting: map[string]chan amqp.Delivery{}, logger: p.options.Logger}
	}
	if p.replies.on == p.channel {
		return nil
	}
	deliveries, err := p.channel.Consume(DirectReplyTo, "", true, false, false, false, nil)
	if err != nil {
		return err
	}
	p.replies.on = p.channel
	go func(r *replies) {
		for d := range deliveries {
			r.deliver(d)
		}
	}(p.replies)
	return nil
}

// Request publishes event as a request and waits up to timeout for its reply, which it returns
// decoded as reply's event (validated; the zero R when reply is nil). A handler's failure is a
// *RemoteTaskError, no reply in time a *RequestTimeoutError (errors.Is ErrRequestTimeout), a
// reply of another contract an *EnvelopeError; publishing errors are those of Publish.
func Request[T, R any](ctx context.Context, bus *Bus, contract *Contract[T], event T, reply *Contract[R],
	timeout time.Duration, options ...PublishOptions) (R, error) {
	var zero R
	if timeout <= 0 {
		return zero, &ConfigurationError{fmt.Sprintf("a request needs a positive timeout, got %s", timeout)}
	}
	var choice PublishOptions
	if len(options) > 0 {
		choice = options[0]
	}
	if choice.Delay != 0 || !choice.At.IsZero() {
		return zero, &ConfigurationError{"a request cannot be delayed"}
	}
	body, err := contract.Encode(event)
	if err != nil {
		return zero, err
	}
	o, err := bus.outgoing(contract.Type, contract.Exchange, contract.RoutingKey, contract.SchemaID, body, choice)
	if err != nil {
		return zero, err
	}
	correlationID := uuid.NewString()
	o.message.ReplyTo, o.message.CorrelationId, o.request = DirectReplyTo, correlationID, true
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	timedOut := &RequestTimeoutError{Timeout: timeout, EventType: contract.Type, EventID: o.message.MessageId}
	answer, waiting := bus.publisher.expectReply(correlationID)
	defer waiting.forget(correlationID)
	if err := bus.publisher.publish(ctx, []*outgoing{o})[0]; err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return zero, timedOut
		}
		return zero, err
	}
	select {
	case d := <-answer:
		return readReply(d, reply, contract.Type, o.message.MessageId, bus.options.Limits)
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return zero, timedOut
		}
		return zero, ctx.Err()
	}
}

// expectReply registers a waiter for correlationID (before the request is sent).
func (p *publisher) expectReply(correlationID string) (chan amqp.Delivery, *replies) {
	p.mu.Lock()
	if p.replies == nil {
		p.replies = &replies{waiting: map[string]chan amqp.Delivery{}, logger: p.options.Logger}
	}
	r := p.replies
	p.mu.Unlock()
	return r.expect(correlationID), r
}

// readReply is the typed result in a reply (see Request).
func readReply[R any](d amqp.Delivery, reply *Contract[R], requestType, requestID string, limits InputLimits) (R, error) {
	var zero R
	switch status := headerString(d.Headers[ReplyStatusHeader]); status {
	case "error":
		remoteType := headerString(d.Headers[ErrorTypeHeader])
		if remoteType == "" {
			remoteType = "Exception"
		}
		return zero, &RemoteTaskError{RemoteType: remoteType, RemoteMessage: headerString(d.Headers[ErrorHeader]),
			EventType: requestType, EventID: requestID}
	case "ok":
	default:
		return zero, &EnvelopeError{"malformed_reply", fmt.Sprintf("reply to %s %s has no valid %s header (got %q)",
			requestType, requestID, ReplyStatusHeader, status)}
	}
	if reply == nil {
		return zero, nil
	}
	if len(d.Body) == 0 {
		return zero, &EnvelopeError{"unexpected_reply", fmt.Sprintf("the handler of %s returned no result; expected %s", requestType, reply.Type)}
	}
	attrs, data, err := ParseEnvelope(d.Headers, d.ContentType, d.Body)
	if err != nil {
		return zero, err
	}
	if attrs.Type != reply.Type {
		return zero, &EnvelopeError{"unexpected_reply", fmt.Sprintf("the reply to %s is a %s, expected %s", requestType, attrs.Type, reply.Type)}
	}
	return reply.Decode(data, limits)
}
