package eventbus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
)

// On a real broker, when EVENTBUS_TEST_URL names one (tests/toolchain/test_go_runtime.py gives
// it a private vhost): what a handler can return, extension attributes, delays, unroutable
// publishes and middleware, end to end through the runtime.

type thing struct {
	N int `json:"n"`
}

const thingSchema = `{"$id": "https://example.test/thing.json", "type": "object", "required": ["n"],
	"properties": {"n": {"type": "integer", "minimum": 0}}, "additionalProperties": false}`

func brokerURL(t *testing.T) string {
	url := os.Getenv("EVENTBUS_TEST_URL")
	if url == "" {
		t.Skip("EVENTBUS_TEST_URL is not set: no broker for this test")
	}
	return url
}

func TestHandlersSteerRetriesAndParkingOnABroker(t *testing.T) {
	url := brokerURL(t)
	suffix := uuid.NewString()[:8]
	contract := NewContract[thing]("test.thing.v1", "test-"+suffix, "test.thing.v1", "https://example.test/thing.json",
		map[string]string{"https://example.test/thing.json": thingSchema})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	calls := 0
	counting := func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			mu.Lock()
			calls++
			mu.Unlock()
			return next(ctx, m)
		}
	}
	bus, err := Connect(ctx, Options{URL: url, Service: "rt-" + suffix, Middleware: []Middleware{counting}})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()

	seen := map[int][]EventContext{}
	arrived := map[int]time.Time{}
	done := make(chan struct{}, 16)
	policy := RetryPolicy{MaxAttempts: 3, Backoff: Backoff{First: 100 * time.Millisecond, Factor: 2, Maximum: time.Second}}
	_, err = Subscribe(ctx, bus, contract, func(ctx context.Context, event thing, meta EventContext) error {
		mu.Lock()
		seen[event.N] = append(seen[event.N], meta)
		arrived[event.N] = time.Now()
		mu.Unlock()
		switch {
		case event.N == 2 && meta.Attempt == 1:
			return RetryLater(200 * time.Millisecond)
		case event.N == 3:
			defer func() { done <- struct{}{} }()
			return Park("customer_gone")
		case event.N == 5:
			defer func() {
				if meta.Attempt == 3 {
					done <- struct{}{}
				}
			}()
			return errors.New("always")
		}
		done <- struct{}{}
		return nil
	}, SubscribeOptions{Retry: &policy, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	sent := time.Now()
	publish := func(n int, options PublishOptions) {
		if _, err := Publish(ctx, bus, contract, thing{n}, options); err != nil {
			t.Fatal(err)
		}
	}
	publish(1, PublishOptions{PartitionKey: "p-1", Sequence: "7", Extensions: map[string]string{"tenant": "acme"}})
	publish(2, PublishOptions{})
	publish(3, PublishOptions{})
	publish(4, PublishOptions{At: sent.Add(500 * time.Millisecond)})
	publish(5, PublishOptions{})
	for i := 0; i < 5; i++ {
		select {
		case <-done:
		case <-ctx.Done():
			t.Fatalf("only %d of 5 events finished: %v", i, seen)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	first := seen[1][0]
	if first.PartitionKey != "p-1" || first.Sequence != "7" || first.Extensions["tenant"] != "acme" || first.Attempt != 1 || first.Exchange != contract.Exchange {
		t.Errorf("extensions: %+v", first)
	}
	if len(seen[2]) != 2 || seen[2][1].Attempt != 2 || seen[2][1].Exchange != contract.Exchange || seen[2][1].RoutingKey != "test.thing.v1" {
		t.Errorf("RetryLater: %+v", seen[2])
	}
	if arrived[4].Sub(sent) < 500*time.Millisecond {
		t.Errorf("a delayed event arrived after %s", arrived[4].Sub(sent))
	}
	if len(seen[5]) != 3 {
		t.Errorf("always failing: %d attempts", len(seen[5]))
	}
	if calls != len(seen[1])+len(seen[2])+len(seen[3])+len(seen[4])+len(seen[5]) {
		t.Errorf("middleware saw %d calls", calls)
	}

	_, err = Publish(ctx, bus, contract.OnExchange("nobody-"+suffix), thing{1}, PublishOptions{})
	var publishErr *PublishError
	if !errors.As(err, &publishErr) || publishErr.Kind != PublishUnroutable {
		t.Errorf("unroutable: %v", err)
	}
	if _, err := Publish(ctx, bus, contract, thing{-1}, PublishOptions{}); !errors.As(err, new(*ValidationError)) {
		t.Errorf("invalid: %v", err)
	}

	parked := parkedReasons(t, url, "rt-"+suffix+".test.thing.v1.dlq", 2)
	if parked["customer_gone"] != 1 || parked["handler_error"] != 1 {
		t.Errorf("parked: %v", parked)
	}
}

// parkedReasons takes want messages from a dead-letter queue and counts their park reasons.
func parkedReasons(t *testing.T, url, queue string, want int) map[string]int {
	connection, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer connection.Close()
	channel, err := connection.Channel()
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]int{}
	for deadline, got := time.Now().Add(10*time.Second), 0; got < want && time.Now().Before(deadline); {
		message, ok, err := channel.Get(queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		reasons[fmt.Sprint(message.Headers[ReasonHeader])]++
		got++
	}
	return reasons
}
