package eventbus

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

type recordedAcks struct {
	mu   sync.Mutex
	sent []string
}

func (r *recordedAcks) Ack(tag uint64, multiple bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, fmt.Sprintf("ack %d multiple=%v", tag, multiple))
	return nil
}
func (r *recordedAcks) Nack(tag uint64, multiple, requeue bool) error { return nil }
func (r *recordedAcks) Reject(tag uint64, requeue bool) error         { return nil }

func (r *recordedAcks) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent)
}

func (r *recordedAcks) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	sent := r.sent
	r.sent = nil
	return sent
}

func TestAcksGoOutAsOneMultipleAckOnlyForASettledRunAtTheHead(t *testing.T) {
	channel := &recordedAcks{}
	b := &ackBatcher{channel: channel, state: map[uint64]uint8{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	deliveries := map[uint64]*amqp.Delivery{}
	for tag := uint64(1); tag <= 8; tag++ {
		deliveries[tag] = &amqp.Delivery{Acknowledger: channel, DeliveryTag: tag}
		b.delivered(tag)
	}
	expect := func(late bool, want ...string) {
		t.Helper()
		b.flush(late)
		if got := channel.take(); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("sent %v, want %v", got, want)
		}
	}
	b.ack(deliveries[2])
	b.ack(deliveries[3])
	expect(false) // 1 is still in its handler: nothing may cover it
	b.ack(deliveries[1])
	expect(false, "ack 3 multiple=true")
	b.settled(deliveries[4]) // nacked or parked by its worker
	b.ack(deliveries[5])
	expect(false, "ack 5 multiple=true")
	b.settled(deliveries[6])
	expect(false) // a settled run without an ack of ours: nothing to send
	b.ack(deliveries[8])
	expect(false)                        // 7 still runs
	expect(true, "ack 8 multiple=false") // held past ackHold: alone
	b.ack(deliveries[7])
	expect(false, "ack 7 multiple=true") // covers 6 (settled) and 7, not 8 again
	if len(b.order) != 0 || len(b.state) != 0 || b.held != 0 {
		t.Errorf("left %v %v %d", b.order, b.state, b.held)
	}
	other := &amqp.Delivery{Acknowledger: &recordedAcks{}, DeliveryTag: 1}
	b.ack(other) // from an earlier channel: acked there at once
	if sent := other.Acknowledger.(*recordedAcks).take(); len(sent) != 1 || len(channel.take()) != 0 {
		t.Errorf("%v", sent)
	}
}

func TestHeldAcksGoOutAfterTheHoldAndAtClose(t *testing.T) {
	channel := &recordedAcks{}
	b := newAckBatcher(channel)
	for tag := uint64(1); tag <= 3; tag++ {
		b.delivered(tag)
	}
	b.ack(&amqp.Delivery{Acknowledger: channel, DeliveryTag: 2})
	deadline := time.Now().Add(5 * time.Second)
	for channel.count() == 0 && time.Now().Before(deadline) {
		time.Sleep(ackHold)
	}
	if got := channel.take(); !reflect.DeepEqual(got, []string{"ack 2 multiple=false"}) {
		t.Fatalf("%v", got)
	}
	b.ack(&amqp.Delivery{Acknowledger: channel, DeliveryTag: 3})
	b.close()
	b.ack(&amqp.Delivery{Acknowledger: channel, DeliveryTag: 1}) // after close: at once
	if got := channel.take(); !reflect.DeepEqual(got, []string{"ack 3 multiple=false", "ack 1 multiple=false"}) {
		t.Fatalf("%v", got)
	}
}
