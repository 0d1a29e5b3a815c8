package eventbus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultURL is the local RabbitMQ.
const DefaultURL = "amqp://guest:guest@127.0.0.1:5672/%2F"

// Options configure a Bus; zero values take the documented defaults, which are the Python
// SDK's (BusSettings).
type Options struct {
	Service         string        // required: queues are <service>.<event type>
	URL             string        // default DefaultURL; several comma-separated (a cluster's nodes) as in EVENTBUS_URL
	URLs            []string      // the nodes of a cluster, tried in a fresh random order at each connect; with URL too
	Source          string        // CloudEvents source, default /services/<service>
	Prefetch        int           // unacknowledged deliveries, and so handlers running, per subscription; default 100
	QueueType       string        // quorum (default) or classic
	DeliveryLimit   int           // quorum queues' broker-side safety net; default 20, negative for none
	ConfirmTimeout  time.Duration // how long a publish waits for its confirm; default 30 s
	ReconnectWindow time.Duration // how long a publish keeps reconnecting after its connection dropped; default 15 s
	PublishWindow   int           // unconfirmed publishes in flight in PublishMany; default 500
	HandlerTimeout  time.Duration // default time limit of one handler run; default 600 s
	ShutdownGrace   time.Duration // how long in-flight handlers may finish on shutdown; default 30 s
	Heartbeat       time.Duration // AMQP heartbeat; default 60 s
	Retry           *RetryPolicy  // default retry policy of every subscription; default DefaultRetry
	Limits          InputLimits   // what consumers refuse to parse; zero: DefaultLimits
	Logger          Logger        // default NopLogger: the runtime never writes to stderr itself
	Middleware      []Middleware  // wrapped around every handler, first is outermost
	// RevocationsURL is the revocation store (Redis, redis://host:port/db): when set, workflow
	// steps and delayed deliveries are checked against it before they run (revocations.go).
	RevocationsURL string
}

func (o Options) withDefaults() (Options, error) {
	if o.Service == "" {
		return o, &ConfigurationError{"eventbus: a service name is required"}
	}
	defaults := []struct {
		zero bool
		set  func()
	}{
		{o.URL == "" && len(o.URLs) == 0, func() { o.URL = DefaultURL }},
		{o.Source == "", func() { o.Source = "/services/" + o.Service }},
		{o.Prefetch <= 0, func() { o.Prefetch = 100 }},
		{o.QueueType == "", func() { o.QueueType = "quorum" }},
		{o.DeliveryLimit == 0, func() { o.DeliveryLimit = DefaultDeliveryLimit }},
		{o.ConfirmTimeout <= 0, func() { o.ConfirmTimeout = 30 * time.Second }},
		{o.ReconnectWindow <= 0, func() { o.ReconnectWindow = 15 * time.Second }},
		{o.PublishWindow <= 0, func() { o.PublishWindow = 500 }},
		{o.HandlerTimeout <= 0, func() { o.HandlerTimeout = 600 * time.Second }},
		{o.ShutdownGrace <= 0, func() { o.ShutdownGrace = 30 * time.Second }},
		{o.Heartbeat <= 0, func() { o.Heartbeat = 60 * time.Second }},
		{o.Retry == nil, func() { policy := DefaultRetry; o.Retry = &policy }},
		{o.Logger == nil, func() { o.Logger = NopLogger{} }},
	}
	for _, d := range defaults {
		if d.zero {
			d.set()
		}
	}
	o.URLs = brokerURLs(o.URL, o.URLs)
	for _, url := range o.URLs {
		if !strings.HasPrefix(url, "amqp://") && !strings.HasPrefix(url, "amqps://") {
			return o, &ConfigurationError{fmt.Sprintf("broker URL must start with amqp:// or amqps://, not %q", redact(url))}
		}
	}
	if o.QueueType != "quorum" && o.QueueType != "classic" {
		return o, &ConfigurationError{fmt.Sprintf("queue type must be quorum or classic, not %q", o.QueueType)}
	}
	o.Limits = o.Limits.withDefaults()
	return o, o.Retry.check()
}

// Bus publishes and consumes for one service, over two connections as in Python (RabbitMQ
// blocks publishing connections under a resource alarm; acks must keep flowing).
type Bus struct {
	options     Options
	publisher   *publisher
	consumer    *consumer
	revocations *revocations // nil without Options.RevocationsURL
	closeOnce   sync.Once
	closeErr    error
}

// Connect checks that the broker answers and returns the bus; consuming starts with the first
// subscription.
func Connect(ctx context.Context, options Options) (*Bus, error) {
	options, err := options.withDefaults()
	if err != nil {
		return nil, err
	}
	bus := &Bus{options: options}
	bus.publisher = &publisher{options: &bus.options}
	bus.consumer = newConsumer(bus)
	if options.RevocationsURL != "" {
		bus.revocations = newRevocations(options.RevocationsURL)
	}
	bus.publisher.mu.Lock()
	err = bus.publisher.open()
	bus.publisher.mu.Unlock()
	var failed *ConnectionFailedError
	if errors.As(err, &failed) {
		return nil, failed
	}
	if err != nil {
		return nil, fmt.Errorf("eventbus: cannot open a confirm channel: %w", err)
	}
	return bus, nil
}

// Options returns the bus's options with their defaults filled in.
func (b *Bus) Options() Options { return b.options }

// Run serves until ctx is cancelled, a SIGTERM or SIGINT arrives, or consuming fails for good
// (a topology mismatch after a reconnect); then it shuts down gracefully. It returns nil after
// a signal or cancellation.
func (b *Bus) Run(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var failure error
	select {
	case <-ctx.Done():
	case failure = <-b.consumer.fatal:
	}
	if err := b.Shutdown(b.options.ShutdownGrace); err != nil && failure == nil {
		failure = err
	}
	return failure
}

// Shutdown stops taking deliveries, lets handlers in flight finish within grace (their
// contexts are cancelled after it), hands back what is left (the broker requeues unacked
// deliveries when the connection closes) and closes both connections.
func (b *Bus) Shutdown(grace time.Duration) error {
	b.closeOnce.Do(func() {
		b.consumer.stop(grace)
		b.closeErr = b.publisher.close()
		if b.revocations != nil {
			_ = b.revocations.close()
		}
	})
	return b.closeErr
}

// Close is Shutdown with Options.ShutdownGrace.
func (b *Bus) Close() error { return b.Shutdown(b.options.ShutdownGrace) }

func redact(url string) string {
	for i := len("amqp://"); i < len(url); i++ {
		if url[i] == '@' {
			for j := len("amqp://"); j < i; j++ {
				if url[j] == ':' {
					return url[:j+1] + "***" + url[i:]
				}
			}
		}
	}
	return url
}
