package eventbus

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The confirm bookkeeping without a broker: the ordering amqp091-go's reader gives (a return
// before the ack of the same message) and a channel that closes with publishes unconfirmed.
func TestConfirmsSettleByDeliveryTagAndMatchReturnsByMessageID(t *testing.T) {
	state := &confirms{next: 1, pending: map[uint64]*waiter{}, returned: map[string]int{}}
	acks := make(chan amqp.Confirmation, 10)
	returns := make(chan amqp.Return, 10)
	ok1, _, _ := state.register("a")
	unroutable, _, _ := state.register("b")
	nacked, _, _ := state.register("c")
	lost, _, _ := state.register("d")
	acks <- amqp.Confirmation{DeliveryTag: 1, Ack: true} // settled before the waiter could have been registered otherwise
	returns <- amqp.Return{MessageId: "b"}
	acks <- amqp.Confirmation{DeliveryTag: 2, Ack: true}
	acks <- amqp.Confirmation{DeliveryTag: 3, Ack: false}
	close(acks)
	close(returns)
	state.listen(acks, returns)
	p := &publisher{options: &Options{ConfirmTimeout: time.Second}}
	o := &outgoing{exchange: "chat", routingKey: "k", label: "t"}
	ctx := context.Background()
	if err := p.outcome(ctx, o, ok1); err != nil {
		t.Errorf("acked: %v", err)
	}
	if err, _ := p.outcome(ctx, o, unroutable).(*PublishError); err == nil || err.Kind != PublishUnroutable ||
		err.Message != "t b is unroutable: no queue is bound to exchange 'chat' with routing key 'k'" {
		t.Errorf("returned: %v", err)
	}
	if err, _ := p.outcome(ctx, o, nacked).(*PublishError); err == nil || err.Kind != PublishNacked {
		t.Errorf("nacked: %v", err)
	}
	if err := p.outcome(ctx, o, lost); err != errLost {
		t.Errorf("lost: %v", err)
	}
	if _, _, open := state.register("e"); open {
		t.Error("a closed channel takes no more publishes")
	}
}

func TestAConfirmThatArrivedIsNeverATimeout(t *testing.T) {
	p := &publisher{options: &Options{ConfirmTimeout: time.Nanosecond}}
	w := &waiter{done: make(chan struct{}), id: "x", sentAt: time.Now().Add(-time.Hour), acked: true}
	close(w.done)
	if err := p.outcome(context.Background(), &outgoing{}, w); err != nil {
		t.Fatal(err)
	}
	silent := &waiter{done: make(chan struct{}), id: "y", sentAt: time.Now()}
	if err, _ := p.outcome(context.Background(), &outgoing{label: "t"}, silent).(*PublishError); err == nil || err.Kind != PublishTimeout {
		t.Fatalf("%v", err)
	}
}
