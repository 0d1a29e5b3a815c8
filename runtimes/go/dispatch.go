package eventbus

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// From one delivery to "call the handler with this event" or "park it because…", then settle:
// success → ack; a failure the retry policy retries → a confirmed copy into the delay queues
// whose target is this queue, then ack (never held unacked while waiting); anything else → a
// confirmed copy to <queue>.dlq with its history, then ack. If that publish fails the delivery
// goes back to the queue: nothing is acked unsettled. The same steps as the Python SDK's
// QueueDispatcher and AsyncConsumer, with the same park reasons.

func (s *Subscription) work() {
	defer s.workers.Done()
	for delivery := range s.feed {
		delivery := delivery
		s.process(&delivery)
	}
}

func (s *Subscription) process(d *amqp.Delivery) {
	if channel, ok := d.Acknowledger.(*amqp.Channel); ok && channel.IsClosed() {
		return // its channel is gone: the broker redelivers it; handling it now would do the work twice
	}
	acks := s.ackBatcher()
	if s.stopping.Load() {
		_ = d.Nack(false, true)
		acks.settled(d)
		return
	}
	logger := s.bus.options.Logger
	if s.bus.revocations != nil && needsCheck(d.Headers) && s.dropRevoked(d) {
		acks.settled(d)
		return
	}
	// A workflow step's slip is read first (Python's order): a bad one is parked unrun.
	step, slipErr := stepOf(d.Headers)
	var message *Message
	var reason *ParkReason
	if slipErr != nil {
		reason = &ParkReason{"invalid_slip", slipErr.Error(), "SlipError"}
	} else {
		message, reason = s.prepare(d)
	}
	if reason != nil {
		logger.Warn("parking a delivery", "queue", s.Queue, "reason", reason.Code, "error", reason.Error)
		s.park(d, *reason, 1, step, reason.Error)
		acks.settled(d)
		return
	}
	started := time.Now()
	err := s.call(message)
	if err == nil {
		s.succeeded(d, message, step, started)
		return
	}
	if errors.Is(err, errCutOff) {
		_ = d.Nack(false, true)
		acks.settled(d)
		return
	}
	meta := &message.Context
	decision := s.retry.Decide(err, meta.Attempt, rand.Float64)
	if decision.Park != nil {
		logger.Warn("handler failed; parking", "type", meta.Type, "id", meta.ID, "attempt", meta.Attempt, "error", err.Error())
		s.park(d, *decision.Park, meta.Attempt, step, err.Error())
		acks.settled(d)
		return
	}
	logger.Warn("handler failed; retrying", "type", meta.Type, "id", meta.ID, "attempt", meta.Attempt,
		"error", err.Error(), "delay", decision.Delay.String())
	s.retryLater(d, FailureReason(err), decision)
	acks.settled(d)
}

// succeeded settles a delivery whose handler returned nil: a workflow step's next steps and
// report go out first (confirmed; nacked if not), a request is answered, then it is acked.
func (s *Subscription) succeeded(d *amqp.Delivery, message *Message, step *workflowStep, started time.Time) {
	acks := s.ackBatcher()
	if step != nil {
		batch, err := s.forwardStep(step, &message.Context, message.Result, started)
		var invalid *StepResultError
		if errors.As(err, &invalid) {
			s.bus.options.Logger.Warn("a step's result does not fit its next step; parking it", "workflow", step.workflowID,
				"step", step.step, "error", invalid.Message)
			s.park(d, ParkReason{"workflow_result_invalid", invalid.Message, "StepResultError"}, message.Context.Attempt, step, invalid.Message)
			acks.settled(d)
			return
		}
		if err == nil {
			err = firstError(s.bus.publisher.publish(context.Background(), batch))
		}
		if err != nil {
			s.bus.options.Logger.Error("could not forward a workflow step; handing the delivery back to the queue",
				"workflow", step.workflowID, "step", step.step, "error", err.Error())
			time.Sleep(settlePause)
			_ = d.Nack(false, true)
			acks.settled(d)
			return
		}
	}
	if d.ReplyTo != "" {
		s.bus.answer(s.bus.okReply(d, message.Result))
	}
	acks.ack(d) // with the acks of its neighbours when they finish together (acks.go)
}

// dropRevoked acks a revoked delivery and says so; a store that cannot answer hands the
// delivery back after a pause (never dropped unchecked). False: run it.
func (s *Subscription) dropRevoked(d *amqp.Delivery) bool {
	id := d.MessageId
	if attrs, _, err := ParseEnvelope(d.Headers, d.ContentType, d.Body); err == nil {
		id = attrs.ID
	}
	workflow := headerString(d.Headers[WorkflowHeader])
	revoked, err := s.bus.revocations.revoked(workflow, id)
	logger := s.bus.options.Logger
	if err != nil {
		logger.Error("the revocation store did not answer; handing the delivery back to the queue", "queue", s.Queue, "error", err.Error())
		time.Sleep(settlePause)
		_ = d.Nack(false, true)
		return true
	}
	if revoked {
		logger.Info("dropping a revoked delivery", "queue", s.Queue, "id", id, "workflow", workflow)
		_ = d.Ack(false)
	}
	return revoked
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Subscription) ackBatcher() *ackBatcher {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acks
}

// prepare checks the delivery the way Python's QueueDispatcher.prepare does, in the same order.
func (s *Subscription) prepare(d *amqp.Delivery) (*Message, *ParkReason) {
	limits := s.bus.options.Limits
	if len(d.Body) > limits.MaxBodyBytes {
		refused := CheckBody(d.Body, limits)
		return nil, &ParkReason{refused.Reason, refused.Message, "EnvelopeError"}
	}
	attrs, data, err := ParseEnvelope(d.Headers, d.ContentType, d.Body)
	var envelopeErr *EnvelopeError
	if errors.As(err, &envelopeErr) {
		return nil, &ParkReason{envelopeErr.Reason, envelopeErr.Message, "EnvelopeError"}
	}
	if attrs.Type != s.eventType {
		return nil, &ParkReason{"unsupported_event_type", fmt.Sprintf(
			"event type '%s' has no handler on queue %s (handles: %s)", attrs.Type, s.Queue, s.eventType), "ContractError"}
	}
	event, err := s.decode(data)
	var validationErr *ValidationError
	switch {
	case errors.As(err, &envelopeErr):
		return nil, &ParkReason{envelopeErr.Reason, envelopeErr.Message, "EnvelopeError"}
	case errors.As(err, &validationErr):
		return nil, &ParkReason{"schema_invalid", validationErr.Error(), "EventValidationError"}
	case err != nil:
		return nil, &ParkReason{"schema_invalid", err.Error(), fmt.Sprintf("%T", err)}
	}
	from := originOf(d, s.Queue)
	return &Message{Event: event, Body: data, Context: EventContext{
		ID: attrs.ID, Source: attrs.Source, Type: attrs.Type, SpecVersion: attrs.SpecVersion, Time: attrs.Time,
		Subject: attrs.Subject, DataSchema: attrs.DataSchema, DataContentType: attrs.DataContentType,
		Extensions: attrs.Extensions, PartitionKey: attrs.Extensions["partitionkey"], Sequence: attrs.Extensions["sequence"],
		Headers: d.Headers, Redelivered: d.Redelivered, Attempt: attemptOf(d.Headers), Queue: s.Queue,
		Exchange: from.Exchange, RoutingKey: from.RoutingKey,
	}}, nil
}

var errCutOff = errors.New("eventbus: the handler was cut off by shutdown")

// call runs the handler under its time limit. A handler that ignores its context past the
// limit keeps running in its goroutine, but its delivery is settled as failed at the limit
// and whatever it returns later is ignored.
func (s *Subscription) call(message *Message) (err error) {
	ctx, cancel := context.WithTimeout(s.hard, s.timeout)
	defer cancel()
	result := make(chan error, 1)
	go func() {
		defer func() {
			if recovered := recover(); recovered != nil {
				result <- fmt.Errorf("panic: %v", recovered)
			}
		}()
		result <- s.handler(ctx, message)
	}()
	select {
	case err = <-result:
		if err == nil {
			return nil
		}
	case <-ctx.Done():
		select {
		case err = <-result: // it finished just as time ran out: take its answer
			if err == nil {
				return nil
			}
		default:
			err = ctx.Err() // still running: settled as failed now, its answer is ignored
		}
	}
	switch {
	case s.hard.Err() != nil:
		return errCutOff
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &HandlerTimeoutError{Limit: s.timeout, EventType: message.Context.Type, EventID: message.Context.ID}
	}
	return err
}

// copyOf is a retry or park copy of d; replyTo is the request's reply_to for a retry (its last
// attempt answers) and "" for a park copy (a replay from the DLQ answers no one).
func copyOf(d *amqp.Delivery, headers amqp.Table, replyTo string) amqp.Publishing {
	return amqp.Publishing{
		ContentType: d.ContentType, ContentEncoding: d.ContentEncoding, DeliveryMode: amqp.Persistent,
		MessageId: d.MessageId, Type: d.Type, Timestamp: d.Timestamp, AppId: d.AppId, CorrelationId: d.CorrelationId,
		ReplyTo: replyTo, Headers: headers, Body: d.Body,
	}
}

// park copies d to <queue>.dlq; for a workflow step the failed report and the on_error steps go
// in the same confirmed batch; a request is answered with the error once that is confirmed.
func (s *Subscription) park(d *amqp.Delivery, reason ParkReason, attempt int, step *workflowStep, replyError string) {
	now := time.Now()
	headers := ParkHeaders(d.Headers, reason, originOf(d, s.Queue), attempt, now)
	o := &outgoing{exchange: "", routingKey: DeadLetterQueue(s.Queue), label: "parked message", message: copyOf(d, headers, "")}
	batch := append([]*outgoing{o}, s.failedStep(step, d, reason, attempt, now)...)
	if err := firstError(s.bus.publisher.publish(context.Background(), batch)); err != nil {
		s.bus.options.Logger.Error("could not park a delivery from "+s.Queue+"; handing the delivery back to the queue", "error", err.Error())
		time.Sleep(settlePause)
		_ = d.Nack(false, true)
		return
	}
	if d.ReplyTo != "" {
		s.bus.answer(s.bus.errorReply(d, reason.ErrorType, replyError))
	}
	_ = d.Ack(false)
}

func (s *Subscription) retryLater(d *amqp.Delivery, reason ParkReason, decision Decision) {
	ticks, err := DelayTicks(decision.Delay)
	if err != nil {
		ticks = maxDelayTicks
	}
	exchange, key, _ := DelayRoute(ticks, s.Queue)
	delay := time.Duration(ticks) * TickMS * time.Millisecond
	headers := RetryHeaders(d.Headers, reason, originOf(d, s.Queue), decision.Attempt, delay, time.Now())
	o := &outgoing{exchange: exchange, routingKey: key, label: "retry", delayed: true, message: copyOf(d, headers, d.ReplyTo)}
	s.republishThenAck(d, o, "schedule a retry on "+s.Queue)
}

func (s *Subscription) republishThenAck(d *amqp.Delivery, o *outgoing, what string) {
	if err := s.bus.publisher.publish(context.Background(), []*outgoing{o})[0]; err != nil {
		s.bus.options.Logger.Error("could not "+what+"; handing the delivery back to the queue", "error", err.Error())
		time.Sleep(settlePause)
		_ = d.Nack(false, true)
		return
	}
	_ = d.Ack(false)
}
