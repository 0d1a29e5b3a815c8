package eventbus

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The publisher: one connection, one confirm channel, confirms tracked by delivery tag.
//
// amqp091-go 1.5.0's PublishWithDeferredConfirmWithContext registers a confirmation only after
// the frame is on the wire, so a fast broker's ack can arrive first and the publish waits for
// its timeout although the message is stored. Here the sequence number is taken and the
// waiter registered, under one mutex, before the frame is sent; a single goroutine reads
// NotifyPublish (one confirmation per tag, in order, starting at 1 after Confirm) and
// NotifyReturn, and settles the waiters. The broker sends basic.return before the basic.ack of
// the same message, and amqp091-go hands both over from its one reader goroutine in that order,
// so draining the returns before settling an ack never misses one; returns are matched by
// message id. A connection that drops with publishes unconfirmed is reopened and those
// publishes sent again, for up to ReconnectWindow; then they fail. Nothing is dropped silently.

// outgoing is one message ready for the wire, with what must exist before it is sent.
type outgoing struct {
	exchange   string
	routingKey string
	message    amqp.Publishing
	label      string     // the event type, for errors
	declare    string     // a domain exchange to declare first ("" for none)
	delayed    bool       // goes through the delay machinery: declare it first
	landing    *QueueSpec // a delayed event's landing queue, declared and bound first
	optional   bool       // not mandatory: reports and replies
	request    bool       // a request: the channel consumes direct reply-to first
}

type waiter struct {
	done     chan struct{}
	id       string
	sentAt   time.Time
	acked    bool
	returned bool
	lost     bool // the channel closed before the confirm
}

// confirms is the bookkeeping of one confirm channel.
type confirms struct {
	mu       sync.Mutex
	next     uint64
	pending  map[uint64]*waiter
	returned map[string]int
	closed   bool
}

func (c *confirms) register(id string) (*waiter, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, 0, false
	}
	w := &waiter{done: make(chan struct{}), id: id, sentAt: time.Now()}
	seq := c.next
	c.next++
	c.pending[seq] = w
	return w, seq, true
}

func (c *confirms) settle(confirmation amqp.Confirmation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.pending[confirmation.DeliveryTag]
	if w == nil {
		return
	}
	delete(c.pending, confirmation.DeliveryTag)
	if c.returned[w.id] > 0 {
		c.returned[w.id]--
		if c.returned[w.id] == 0 {
			delete(c.returned, w.id)
		}
		w.returned = true
	}
	w.acked = confirmation.Ack
	close(w.done)
}

func (c *confirms) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for seq, w := range c.pending {
		w.lost = true
		close(w.done)
		delete(c.pending, seq)
	}
}

func (c *confirms) noteReturn(r amqp.Return) {
	c.mu.Lock()
	c.returned[r.MessageId]++
	c.mu.Unlock()
}

// listen settles waiters until the channel closes, then fails the rest as lost.
func (c *confirms) listen(acks <-chan amqp.Confirmation, returns <-chan amqp.Return) {
	defer c.closeAll()
	for {
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			c.noteReturn(r)
		case confirmation, ok := <-acks:
			if !ok {
				return
			}
			for drained := false; !drained && returns != nil; {
				select {
				case r, ok := <-returns:
					if !ok {
						returns = nil
					} else {
						c.noteReturn(r)
					}
				default:
					drained = true
				}
			}
			c.settle(confirmation)
		}
	}
}

type publisher struct {
	options    *Options
	mu         sync.Mutex // serializes sends and (re)connects
	connection *amqp.Connection
	channel    *amqp.Channel
	state      *confirms
	declared   map[string]bool
	closed     bool
	replies    *replies // requests waiting for their replies (request.go), once the first is made
}

var errLost = errors.New("eventbus: the publishing connection is down")

// lost is errLost with its cause: the publish is sent again on a new connection.
type lost struct{ cause error }

func (l *lost) Error() string        { return errLost.Error() + ": " + l.cause.Error() }
func (l *lost) Is(target error) bool { return target == errLost }
func (l *lost) Unwrap() error        { return l.cause }

// open makes sure a confirm channel is up; called with p.mu held.
func (p *publisher) open() error {
	if p.closed {
		return ErrClosed
	}
	if p.channel != nil && !p.channel.IsClosed() && !p.state.isClosed() {
		return nil
	}
	if p.connection != nil {
		p.connection.Close()
	}
	p.connection, p.channel = nil, nil
	connection, err := dial(p.options, "publish")
	if err != nil {
		return &lost{err}
	}
	channel, err := connection.Channel()
	if err == nil {
		err = channel.Confirm(false)
	}
	if err != nil {
		connection.Close()
		return &lost{err}
	}
	state := &confirms{next: 1, pending: map[uint64]*waiter{}, returned: map[string]int{}}
	acks := channel.NotifyPublish(make(chan amqp.Confirmation, 4096))
	returns := channel.NotifyReturn(make(chan amqp.Return, 256))
	go state.listen(acks, returns)
	p.connection, p.channel, p.state, p.declared = connection, channel, state, map[string]bool{}
	return nil
}

func (c *confirms) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// prepare declares what o needs on this connection (once per connection); p.mu held.
func (p *publisher) prepare(o *outgoing) error {
	var needed []func(*declarer) error
	if o.declare != "" && !p.declared["x:"+o.declare] {
		needed = append(needed, func(d *declarer) error {
			return d.exchange(ExchangeSpec{o.declare, "topic", nil})
		})
	}
	if o.delayed && !p.declared["delays"] {
		needed = append(needed, func(d *declarer) error { return d.delays(p.options.Logger) })
	}
	if o.landing != nil && !p.declared["q:"+o.landing.Name] {
		landing := *o.landing
		needed = append(needed, func(d *declarer) error {
			if err := d.queue(landing, p.options.Logger); err != nil {
				return err
			}
			return d.bind(Binding{DeliverExchange, landing.Name, TargetBindingKey(landing.Name), false})
		})
	}
	if len(needed) == 0 {
		return nil
	}
	d := &declarer{connection: p.connection}
	defer d.close()
	for _, step := range needed {
		if err := step(d); err != nil {
			return err
		}
	}
	if o.declare != "" {
		p.declared["x:"+o.declare] = true
	}
	if o.delayed {
		p.declared["delays"] = true
	}
	if o.landing != nil {
		p.declared["q:"+o.landing.Name] = true
	}
	return nil
}

// send puts o on the wire; a nil waiter with a nil error never happens. errLost means: retry.
func (p *publisher) send(ctx context.Context, o *outgoing) (*waiter, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.open(); err != nil {
		return nil, err
	}
	if err := p.prepare(o); err != nil {
		if p.connection.IsClosed() {
			return nil, &lost{err}
		}
		return nil, err
	}
	if o.request {
		if err := p.listen(); err != nil {
			if p.channel.IsClosed() {
				return nil, &lost{err}
			}
			return nil, err
		}
	}
	w, _, ok := p.state.register(o.message.MessageId)
	if !ok {
		return nil, errLost
	}
	if err := p.channel.PublishWithContext(ctx, o.exchange, o.routingKey, !o.optional, false, o.message); err != nil {
		p.channel.Close() // the sequence may be off now: start a new channel; pending ones are lost
		return nil, &lost{err}
	}
	return w, nil
}

// outcome waits for w: nil once confirmed, errLost when the connection went first.
func (p *publisher) outcome(ctx context.Context, o *outgoing, w *waiter) error {
	select {
	case <-w.done:
	default:
		timer := time.NewTimer(time.Until(w.sentAt.Add(p.options.ConfirmTimeout)))
		select {
		case <-w.done:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
	}
	select {
	case <-w.done: // a confirm that arrived is never reported as a timeout
	default:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &PublishError{PublishTimeout, o.label, w.id, fmt.Sprintf(
			"no confirm for %s %s within %s; it may or may not be stored", o.label, w.id, p.options.ConfirmTimeout)}
	}
	switch {
	case w.lost:
		return errLost
	case w.returned:
		return &PublishError{PublishUnroutable, o.label, w.id, fmt.Sprintf(
			"%s %s is unroutable: no queue is bound to exchange '%s' with routing key '%s'", o.label, w.id, o.exchange, o.routingKey)}
	case !w.acked:
		return &PublishError{PublishNacked, o.label, w.id, fmt.Sprintf("the broker refused %s %s", o.label, w.id)}
	}
	return nil
}

// publish sends every message, at most window unconfirmed at once, and returns one error per
// message (nil: confirmed).
func (p *publisher) publish(ctx context.Context, messages []*outgoing) []error {
	return p.publishStream(ctx, len(messages), func(i int) (*outgoing, error) { return messages[i], nil })
}

// publishStream publishes the n messages next(0) … next(n-1), in order, as next makes them
// (a caller can validate the next ones while these are on the wire). A message whose
// connection dropped is sent again on a new one until ReconnectWindow has passed since the
// first drop; then it fails.
func (p *publisher) publishStream(ctx context.Context, n int, next func(int) (*outgoing, error)) []error {
	results := make([]error, n)
	messages := make([]*outgoing, n)
	todo := make([]int, n)
	for i := range todo {
		todo[i] = i
	}
	var firstDrop time.Time
	for failures := 1; len(todo) > 0; failures++ {
		var again []int
		type flight struct {
			index  int
			waiter *waiter
		}
		inFlight := make([]flight, 0, len(todo))
		waited := 0
		down := false // once a send finds the connection down, the rest of the round waits for the next
		settle := func(f flight) {
			err := p.outcome(ctx, messages[f.index], f.waiter)
			if errors.Is(err, errLost) {
				again = append(again, f.index)
				return
			}
			results[f.index] = err
		}
		for _, i := range todo {
			if messages[i] == nil {
				if messages[i], results[i] = next(i); results[i] != nil {
					continue
				}
			}
			if ctx.Err() != nil {
				results[i] = ctx.Err()
				continue
			}
			if down {
				again = append(again, i)
				continue
			}
			w, err := p.send(ctx, messages[i])
			if errors.Is(err, errLost) {
				again, down = append(again, i), true
				continue
			}
			if err != nil {
				results[i] = err
				continue
			}
			inFlight = append(inFlight, flight{i, w})
			if len(inFlight)-waited >= p.options.PublishWindow {
				settle(inFlight[waited])
				waited++
			}
		}
		for ; waited < len(inFlight); waited++ {
			settle(inFlight[waited])
		}
		todo = again
		if len(todo) == 0 {
			break
		}
		sort.Ints(todo)
		if firstDrop.IsZero() {
			firstDrop = time.Now()
		}
		if time.Since(firstDrop) >= p.options.ReconnectWindow || ctx.Err() != nil {
			for _, i := range todo {
				o := messages[i]
				results[i] = &PublishError{PublishFailed, o.label, o.message.MessageId, fmt.Sprintf(
					"could not publish %s %s: the connection to the broker failed and did not come back within %s",
					o.label, o.message.MessageId, p.options.ReconnectWindow)}
			}
			break
		}
		p.options.Logger.Warn("publishing connection lost; reconnecting", "unconfirmed", len(todo))
		sleep(ctx, reconnectPublishBackoff.Delay(failures, rand.Float64))
	}
	return results
}

var reconnectPublishBackoff = Backoff{First: 200 * time.Millisecond, Factor: 2, Maximum: 2 * time.Second, Jitter: 0.5}

func sleep(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

func (p *publisher) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.connection != nil {
		return p.connection.Close()
	}
	return nil
}

// dial connects to any of the broker URLs that answers, trying them in a fresh random order so
// that replicas spread over a cluster's nodes and a reconnect after a node was lost reaches
// another one (as the Python SDK's BusSettings.connect_order and the Node runtime do).
func dial(options *Options, role string) (*amqp.Connection, error) {
	properties := amqp.Table{"connection_name": options.Service + ":" + role + " (go)"}
	order := rand.Perm(len(options.URLs))
	var failures []string
	var last error
	for _, index := range order {
		url := options.URLs[index]
		connection, err := amqp.DialConfig(url, amqp.Config{Properties: properties, Heartbeat: options.Heartbeat})
		if err == nil {
			return connection, nil
		}
		failures, last = append(failures, redact(url)), err
	}
	return nil, &ConnectionFailedError{URL: strings.Join(failures, ", "), Err: last}
}

// brokerURLs is the list of broker URLs from Options.URL (comma-separated) and Options.URLs.
func brokerURLs(url string, urls []string) []string {
	var all []string
	for _, candidate := range append(strings.Split(url, ","), urls...) {
		if candidate = strings.TrimSpace(candidate); candidate != "" {
			all = append(all, candidate)
		}
	}
	return all
}
