package eventbus

import (
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Acks of one consuming channel, coalesced. Every ack is a frame and a write on the shared
// connection, from up to Prefetch workers at once; most finish in delivery order, so one
// basic.ack with multiple=true can settle a run of them. The batcher knows every delivery tag
// in order (the pump registers it before a worker sees it) and what became of it: acked by a
// worker (sent by the batcher) or settled by the worker itself (a nack, or the ack after a
// retry or park copy was confirmed). It sends one multiple ack for the longest settled run at
// the head that ends in an acked tag, so it never covers a delivery still in a handler or
// one settled otherwise still to come. Acks behind a delivery still running are held at
// most ackHold, then sent one by one: a slow handler never holds the prefetch window.

const ackHold = 20 * time.Millisecond

const (
	tagAcked   = 1 // acked by a worker, for the batcher to send
	tagSettled = 2 // settled on the broker already (by the worker, or sent alone after ackHold)
)

type ackBatcher struct {
	channel amqp.Acknowledger // the consuming channel
	mu      sync.Mutex
	order   []uint64         // delivered tags, ascending, not yet flushed past
	state   map[uint64]uint8 // what became of them
	held    int              // tags acked by a worker and not sent yet
	direct  bool             // closed: acks go straight to the channel
	wake    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newAckBatcher(channel amqp.Acknowledger) *ackBatcher {
	b := &ackBatcher{channel: channel, state: map[uint64]uint8{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go b.run()
	return b
}

// delivered registers a tag, in delivery order, before any worker can settle it.
func (b *ackBatcher) delivered(tag uint64) {
	b.mu.Lock()
	b.order = append(b.order, tag)
	b.mu.Unlock()
}

// ack settles d as done: through the batcher when d came on its channel, else directly.
func (b *ackBatcher) ack(d *amqp.Delivery) {
	if b == nil {
		_ = d.Ack(false)
		return
	}
	b.mu.Lock()
	if b.direct || d.Acknowledger != b.channel {
		b.mu.Unlock()
		_ = d.Ack(false)
		return
	}
	b.state[d.DeliveryTag] = tagAcked
	b.held++
	b.mu.Unlock()
	b.poke()
}

// settled notes that the worker settled d itself (after its nack or ack went out).
func (b *ackBatcher) settled(d *amqp.Delivery) {
	if b == nil {
		return
	}
	b.mu.Lock()
	if !b.direct && d.Acknowledger == b.channel {
		b.state[d.DeliveryTag] = tagSettled
	}
	b.mu.Unlock()
	b.poke()
}

func (b *ackBatcher) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *ackBatcher) run() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-b.wake:
			if b.flush(false) {
				timer.Reset(ackHold)
			}
		case <-timer.C:
			if b.flush(true) {
				timer.Reset(ackHold)
			}
		}
	}
}

// flush sends the multiple ack for the settled run at the head, and with late set every other
// ack waiting behind a delivery still running, one by one. It says whether acks still wait.
func (b *ackBatcher) flush(late bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	var last uint64
	head := 0
	for ; head < len(b.order); head++ {
		tag := b.order[head]
		state := b.state[tag]
		if state == 0 {
			break
		}
		if state == tagAcked {
			last = tag
			b.held--
		}
		delete(b.state, tag)
	}
	b.order = b.order[head:]
	if last > 0 {
		_ = b.channel.Ack(last, true)
	}
	if late && b.held > 0 {
		for tag, state := range b.state {
			if state == tagAcked {
				_ = b.channel.Ack(tag, false)
				b.state[tag] = tagSettled
			}
		}
		b.held = 0
	}
	return b.held > 0
}

// close sends every ack still waiting; later acks go straight to the channel.
func (b *ackBatcher) close() {
	b.once.Do(func() {
		b.flush(true)
		b.mu.Lock()
		b.direct = true
		b.mu.Unlock()
		close(b.done)
	})
}
