package eventbus

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
)

// PublishOptions are per-event choices; the zero value publishes now with a random id.
type PublishOptions struct {
	Subject string
	ID      string            // a deterministic id lets consumers deduplicate; default a random UUID
	Time    time.Time         // the event's time (cloudEvents_time); default now
	Trace   map[string]string // traceparent / tracestate
	// Extensions are further CloudEvents attributes (lower-case letters and digits), written
	// as cloudEvents_<name> headers.
	Extensions   map[string]string
	PartitionKey string // the partitionkey extension
	Sequence     string // the sequence extension
	// Delay holds the event back (0 to 7 days, to the nearest 100 ms); At is the same as a
	// moment. Give one or neither. A delayed event reaches every subscriber when it is due.
	Delay time.Duration
	At    time.Time
}

// Publish validates event, publishes it and waits for the broker's confirm; it returns the
// event id, or an error: *ValidationError, *PublishError (unroutable, nacked, timeout, failed),
// *ConfigurationError.
func Publish[T any](ctx context.Context, bus *Bus, contract *Contract[T], event T, options PublishOptions) (string, error) {
	ids, errs := PublishMany(ctx, bus, contract, []T{event}, []PublishOptions{options})
	return ids[0], errs[0]
}

// PublishMany publishes a batch with up to Options.PublishWindow confirms outstanding and
// returns, for each event, its id and its error (nil: confirmed). options is either empty
// (defaults for all), of length one (the same for all, ids aside) or one per event.
func PublishMany[T any](ctx context.Context, bus *Bus, contract *Contract[T], events []T, options []PublishOptions) ([]string, []error) {
	ids := make([]string, len(events))
	for i := range events {
		choice := optionsFor(options, i, len(events))
		if choice.ID == "" {
			choice.ID = uuid.NewString()
		}
		ids[i] = choice.ID
	}
	// Validation (gojsonschema) costs more CPU than sending: the events are encoded on every
	// core while the first ones are already on the wire, and sent in order as they are ready.
	slots := make([]encoded, len(events))
	for i := range slots {
		slots[i].ready = make(chan struct{})
	}
	encoders := runtime.GOMAXPROCS(0)
	if encoders > len(events) {
		encoders = len(events)
	}
	var next int64 = -1
	for w := 0; w < encoders; w++ {
		go func() {
			for i := int(atomic.AddInt64(&next, 1)); i < len(events); i = int(atomic.AddInt64(&next, 1)) {
				choice := optionsFor(options, i, len(events))
				choice.ID = ids[i]
				body, err := contract.Encode(events[i])
				if err == nil {
					slots[i].message, err = bus.outgoing(contract.Type, contract.Exchange, contract.RoutingKey, contract.SchemaID, body, choice)
				}
				slots[i].err = err
				close(slots[i].ready)
			}
		}()
	}
	errs := bus.publisher.publishStream(ctx, len(events), func(i int) (*outgoing, error) {
		<-slots[i].ready
		return slots[i].message, slots[i].err
	})
	return ids, errs
}

// encoded is one event of a batch once validated, or why it is not.
type encoded struct {
	message *outgoing
	err     error
	ready   chan struct{}
}

// optionsFor picks the options of event i: none, the same for all (ids aside), or one each.
func optionsFor(options []PublishOptions, i, n int) PublishOptions {
	switch {
	case len(options) == n:
		return options[i]
	case len(options) == 1:
		choice := options[0]
		if n > 1 {
			choice.ID = ""
		}
		return choice
	}
	return PublishOptions{}
}

// outgoing wraps a validated body in a binary-mode CloudEvent bound for exchange, or for the
// delay machinery when the options ask for a delay.
func (b *Bus) outgoing(eventType, exchange, routingKey, schemaID string, body []byte, options PublishOptions) (*outgoing, error) {
	id := options.ID
	if id == "" {
		id = uuid.NewString()
	}
	now := time.Now()
	moment := options.Time
	if moment.IsZero() {
		moment = now
	}
	extensions, err := extensionsOf(options)
	if err != nil {
		return nil, err
	}
	headers := BuildHeaders(Attributes{
		ID: id, Source: b.options.Source, Type: eventType, Time: FormatTime(moment),
		Subject: options.Subject, DataSchema: schemaID, Extensions: extensions,
	}, options.Trace)
	o := &outgoing{
		exchange: exchange, routingKey: routingKey, label: eventType, declare: exchange,
		message: amqp.Publishing{
			ContentType: JSONContentType, DeliveryMode: amqp.Persistent, MessageId: id, Type: eventType,
			Timestamp: now, AppId: b.options.Source, Headers: headers, Body: body, // the AMQP timestamp is the publish time
		},
	}
	if options.Delay == 0 && options.At.IsZero() {
		return o, nil
	}
	if options.Delay != 0 && !options.At.IsZero() {
		return nil, &ConfigurationError{"give Delay or At, not both"}
	}
	delay := options.Delay
	if !options.At.IsZero() {
		delay = time.Until(options.At)
	}
	ticks, err := DelayTicks(delay)
	if err != nil {
		return nil, err
	}
	landing := LandingQueue(exchange, routingKey)
	delayExchange, key, err := DelayRoute(ticks, landing.Name)
	if err != nil {
		return nil, err
	}
	headers[DeliverAtHeader] = FormatTime(now.Add(time.Duration(ticks) * TickMS * time.Millisecond))
	o.exchange, o.routingKey, o.delayed, o.landing = delayExchange, key, true, &landing
	return o, nil
}

func extensionsOf(options PublishOptions) (map[string]string, error) {
	if len(options.Extensions) == 0 && options.PartitionKey == "" && options.Sequence == "" {
		return nil, nil
	}
	extensions := make(map[string]string, len(options.Extensions)+2)
	for name, value := range options.Extensions {
		if !validExtensionName(name) {
			return nil, &ConfigurationError{fmt.Sprintf("'%s' is not a CloudEvents extension name (lower-case letters and digits, at most 20)", name)}
		}
		extensions[name] = value
	}
	if options.PartitionKey != "" {
		extensions["partitionkey"] = options.PartitionKey
	}
	if options.Sequence != "" {
		extensions["sequence"] = options.Sequence
	}
	return extensions, nil
}
