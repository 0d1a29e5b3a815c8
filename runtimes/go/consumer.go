package eventbus

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
)

// The consuming side: one connection for every subscription of a bus, one channel per
// subscription with its prefetch, and as many worker goroutines as the prefetch, so the
// prefetch bounds the handlers running at once. A supervisor watches the connection and, when
// it drops (broker restart, close_connection, missed heartbeats, a consumer the broker
// cancelled), reconnects with jittered backoff (0.5 s doubling to 30 s), re-declares the whole
// topology and consumes again. Acks go through the delivery itself, so only ever to the
// channel it came on; deliveries of a dead channel are not started (the broker redelivers).

var reconnectBackoff = Backoff{First: 500 * time.Millisecond, Factor: 2, Maximum: 30 * time.Second, Jitter: 0.5}

const settlePause = time.Second // after a failed retry or park publish, before handing the delivery back

// EventContext is what a handler learns about a delivery besides the event: every CloudEvents
// attribute, extensions included, and where the delivery came from.
type EventContext struct {
	ID              string
	Source          string
	Type            string
	SpecVersion     string
	Time            string // RFC 3339, as on the wire
	Subject         string
	DataSchema      string
	DataContentType string
	Extensions      map[string]string // every other attribute, by lower-case name
	PartitionKey    string            // the partitionkey extension
	Sequence        string            // the sequence extension
	Headers         amqp.Table
	Redelivered     bool
	Attempt         int    // 1 for the first run, n for the n-th
	Queue           string // the queue it was consumed from
	Exchange        string // where it was first published (also for a retry)
	RoutingKey      string
}

// SubscribeOptions choose the queue, bindings and behaviour of one subscription; the zero
// value means <service>.<type> bound with the type, and the bus's defaults.
type SubscribeOptions struct {
	Queue       string
	BindingKeys []string
	Retry       *RetryPolicy  // default Options.Retry
	Timeout     time.Duration // time limit of one handler run; default Options.HandlerTimeout
	Prefetch    int           // default Options.Prefetch
	Middleware  []Middleware  // inside the bus's middleware
	// SingleActiveConsumer declares the queue with x-single-active-consumer: of all consumers
	// on it the broker delivers to one at a time, so the queue's order holds across replicas
	// (docs/ordering.md). Combine with Prefetch 1 for one event at a time in order.
	SingleActiveConsumer bool
}

// Subscription is one running consumer.
type Subscription struct {
	Queue       string
	eventType   string
	exchange    string
	bindingKeys []string
	decode      func([]byte) (any, error)
	handler     Handler
	retry       RetryPolicy
	timeout     time.Duration
	prefetch    int
	single      bool // x-single-active-consumer
	bus         *Bus
	feed        chan amqp.Delivery
	stopping    atomic.Bool
	mu          sync.Mutex
	channel     *amqp.Channel
	acks        *ackBatcher // of channel
	tag         string
	pumps       sync.WaitGroup
	workers     sync.WaitGroup
	hard        context.Context // cancelled when the grace period is over
	cancelHard  context.CancelFunc
	stopOnce    sync.Once
	done        chan struct{}
	err         error
}

// Done is closed when the subscription has stopped; Err then says why, if it failed.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err is the failure that stopped the subscription (nil after a normal stop).
func (s *Subscription) Err() error { return s.err }

// Subscribe declares <service>.<type> and its .dlq (quorum, with Python's arguments), binds it,
// and calls handler for every valid event, up to the prefetch at once, until ctx is cancelled
// or the bus shuts down. A delivery is acked after the handler returns nil; a failure is
// retried through the delay queues per the retry policy and parked in the DLQ after the last
// attempt; invalid input is parked at once.
func Subscribe[T any](ctx context.Context, bus *Bus, contract *Contract[T], handler TypedHandler[T], options SubscribeOptions) (*Subscription, error) {
	limits := bus.options.Limits
	decode := func(data []byte) (any, error) { return contract.Decode(data, limits) }
	call := func(ctx context.Context, m *Message) error { return handler(ctx, m.Event.(T), m.Context) }
	Register(contract)
	return bus.consumer.subscribe(ctx, contract.Type, contract.Exchange, contract.RoutingKey, decode, call, options)
}

// ResultHandler handles one event of type T and returns its result: a struct (or a pointer to
// one) of a registered contract, or nil. The result is the reply when the event is a request,
// and the input of the next steps when it is a workflow step.
type ResultHandler[T any] func(ctx context.Context, event T, meta EventContext) (any, error)

// SubscribeResult is Subscribe for a handler that returns a result (see ResultHandler).
func SubscribeResult[T any](ctx context.Context, bus *Bus, contract *Contract[T], handler ResultHandler[T], options SubscribeOptions) (*Subscription, error) {
	limits := bus.options.Limits
	decode := func(data []byte) (any, error) { return contract.Decode(data, limits) }
	call := func(ctx context.Context, m *Message) error {
		result, err := handler(ctx, m.Event.(T), m.Context)
		if err == nil {
			m.Result = result
		}
		return err
	}
	Register(contract)
	return bus.consumer.subscribe(ctx, contract.Type, contract.Exchange, contract.RoutingKey, decode, call, options)
}

type consumer struct {
	bus        *Bus
	mu         sync.Mutex
	connection *amqp.Connection
	subs       []*Subscription
	stopping   bool
	stopped    chan struct{} // closed by stop: a reconnect waiting out its backoff gives up
	fatal      chan error
	watchers   sync.WaitGroup
}

func newConsumer(bus *Bus) *consumer {
	return &consumer{bus: bus, fatal: make(chan error, 1), stopped: make(chan struct{})}
}

func (c *consumer) subscribe(ctx context.Context, eventType, exchange, routingKey string, decode func([]byte) (any, error),
	handler Handler, options SubscribeOptions) (*Subscription, error) {
	b := c.bus
	s := &Subscription{
		Queue: options.Queue, eventType: eventType, exchange: exchange, bindingKeys: options.BindingKeys,
		decode: decode, retry: *b.options.Retry, timeout: options.Timeout, prefetch: options.Prefetch, bus: b,
		feed: make(chan amqp.Delivery), done: make(chan struct{}), single: options.SingleActiveConsumer,
	}
	if s.Queue == "" {
		s.Queue = b.options.Service + "." + eventType
	}
	if len(s.bindingKeys) == 0 {
		s.bindingKeys = []string{routingKey}
	}
	if options.Retry != nil {
		if err := options.Retry.check(); err != nil {
			return nil, err
		}
		s.retry = *options.Retry
	}
	if s.timeout <= 0 {
		s.timeout = b.options.HandlerTimeout
	}
	if s.prefetch <= 0 {
		s.prefetch = b.options.Prefetch
	}
	if err := checkTarget(s.Queue); err != nil {
		return nil, err
	}
	s.handler = compose(handler, b.options.Middleware, options.Middleware)
	s.hard, s.cancelHard = context.WithCancel(context.Background())

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return nil, ErrClosed
	}
	if c.connection == nil || c.connection.IsClosed() {
		connection, err := dial(&b.options, "consume")
		if err != nil {
			return nil, err
		}
		c.connection = connection
		c.watch(connection)
	}
	if err := s.attach(c.connection); err != nil {
		return nil, err
	}
	for i := 0; i < s.prefetch; i++ {
		s.workers.Add(1)
		go s.work()
	}
	c.subs = append(c.subs, s)
	go func() {
		select {
		case <-ctx.Done():
			s.stop(b.options.ShutdownGrace)
		case <-s.done:
		}
	}()
	return s, nil
}

// watch reconnects when connection closes, unless the bus is stopping.
func (c *consumer) watch(connection *amqp.Connection) {
	closed := connection.NotifyClose(make(chan *amqp.Error, 1))
	c.watchers.Add(1)
	go func() {
		defer c.watchers.Done()
		reason := <-closed
		c.reconnect(reason)
	}()
}

func (c *consumer) reconnect(reason *amqp.Error) {
	logger := c.bus.options.Logger
	for failures := 0; ; failures++ {
		c.mu.Lock()
		if c.stopping {
			c.mu.Unlock()
			return
		}
		if failures == 0 {
			logger.Warn("lost the consuming connection; reconnecting", "reason", fmt.Sprint(reason))
		}
		connection, err := dial(&c.bus.options, "consume")
		if err == nil {
			for _, s := range c.subs {
				if s.stopping.Load() {
					continue
				}
				if err = s.attach(connection); err != nil {
					break
				}
			}
			var mismatch *TopologyMismatchError
			if errors.As(err, &mismatch) {
				logger.Error("cannot consume after reconnecting", "error", err.Error())
				connection.Close()
				c.mu.Unlock()
				select {
				case c.fatal <- err:
				default:
				}
				return
			}
			if err != nil {
				connection.Close()
			}
		}
		if err == nil {
			c.connection = connection
			c.watch(connection)
			c.mu.Unlock()
			logger.Warn("reconnected; consuming again", "failed_attempts", failures)
			return
		}
		c.mu.Unlock()
		delay := reconnectBackoff.Delay(failures+1, rand.Float64)
		logger.Warn("reconnect attempt failed", "attempt", failures+1, "error", err.Error(), "next_in", delay.String())
		select {
		case <-time.After(delay):
		case <-c.stopped:
			return
		}
	}
}

// attach declares the subscription's topology on connection and starts consuming there.
func (s *Subscription) attach(connection *amqp.Connection) error {
	options := &s.bus.options
	d := &declarer{connection: connection}
	defer d.close()
	main, deadLetters := ConsumerQueueSpecs(s.Queue, options.QueueType, options.DeliveryLimit, s.single)
	steps := []func() error{
		func() error { return d.delays(options.Logger) },
		func() error { return d.exchange(ExchangeSpec{s.exchange, "topic", nil}) },
		func() error { return d.queue(main, options.Logger) },
		func() error { return d.queue(deadLetters, options.Logger) },
		func() error { return d.bind(Binding{DeliverExchange, s.Queue, TargetBindingKey(s.Queue), false}) },
	}
	for _, key := range s.bindingKeys {
		key := key
		steps = append(steps, func() error { return d.bind(Binding{s.exchange, s.Queue, key, false}) })
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("eventbus: declare %s: %w", s.Queue, err)
		}
	}
	channel, err := connection.Channel()
	if err != nil {
		return err
	}
	tag := "eventbus-go-" + uuid.NewString()
	if err := channel.Qos(s.prefetch, 0, false); err != nil {
		return err
	}
	deliveries, err := channel.Consume(s.Queue, tag, false, false, false, false, nil)
	if err != nil {
		return err
	}
	acks := newAckBatcher(channel)
	s.mu.Lock()
	s.channel, s.tag, s.acks = channel, tag, acks
	s.mu.Unlock()
	s.pumps.Add(1)
	go func() {
		defer s.pumps.Done()
		for delivery := range deliveries {
			acks.delivered(delivery.DeliveryTag)
			s.feed <- delivery
		}
		acks.close() // what handlers ack from now on goes out at once
		if !s.stopping.Load() && !connection.IsClosed() {
			// The broker cancelled the consumer (its queue was deleted): start over.
			options.Logger.Warn("the broker cancelled the consumer; reconnecting", "queue", s.Queue)
			connection.Close()
		}
	}()
	options.Logger.Info("consuming", "queue", s.Queue, "type", s.eventType)
	return nil
}

// stop cancels the consumer, lets handlers in flight finish within grace, then cuts them off.
func (s *Subscription) stop(grace time.Duration) {
	s.stopOnce.Do(func() {
		s.stopping.Store(true)
		s.mu.Lock()
		channel, tag := s.channel, s.tag
		s.mu.Unlock()
		if channel != nil && !channel.IsClosed() {
			channel.Cancel(tag, false)
		}
		s.pumps.Wait()
		close(s.feed)
		finished := make(chan struct{})
		go func() { s.workers.Wait(); close(finished) }()
		timer := time.NewTimer(grace)
		select {
		case <-finished:
		case <-timer.C:
			s.bus.options.Logger.Warn("handlers did not finish within the grace period; handing their deliveries back", "queue", s.Queue)
			s.cancelHard()
			<-finished
		}
		timer.Stop()
		s.cancelHard()
		if channel != nil {
			channel.Close() // whatever is still unacked goes back to the queue
		}
		close(s.done)
	})
}

func (c *consumer) stop(grace time.Duration) {
	c.mu.Lock()
	if !c.stopping {
		close(c.stopped)
	}
	c.stopping = true
	subs := c.subs
	connection := c.connection
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range subs {
		wg.Add(1)
		go func(s *Subscription) { defer wg.Done(); s.stop(grace) }(s)
	}
	wg.Wait()
	if connection != nil {
		connection.Close()
	}
	c.watchers.Wait()
}
