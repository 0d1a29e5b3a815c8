package eventbus

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
)

// On a real broker (EVENTBUS_TEST_URL): requests answered by a Go handler with a result, an
// error and no responder; a workflow step forwarded with its step_completed report.
func TestRequestsAndWorkflowStepsOnABroker(t *testing.T) {
	url := brokerURL(t)
	suffix := uuid.NewString()[:8]
	exchange := "test-rr-" + suffix
	contract := NewContract[thing]("test.ask.v1", exchange, "test.ask.v1", "https://example.test/thing.json",
		map[string]string{"https://example.test/thing.json": thingSchema})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bus, err := Connect(ctx, Options{URL: url, Service: "rr-" + suffix})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	twice := RetryPolicy{MaxAttempts: 2, Backoff: Backoff{First: 100 * time.Millisecond, Factor: 1, Maximum: time.Second}}
	var mu sync.Mutex
	unlucky := 0
	_, err = SubscribeResult(ctx, bus, contract, func(ctx context.Context, event thing, meta EventContext) (any, error) {
		if event.N == 13 {
			mu.Lock()
			unlucky++
			mu.Unlock()
			return nil, errors.New("unlucky")
		}
		return doubled{N: event.N * 2}, nil
	}, SubscribeOptions{Retry: &twice})
	if err != nil {
		t.Fatal(err)
	}

	got, err := Request(ctx, bus, contract, thing{N: 4}, doubledContract, 10*time.Second)
	if err != nil || got.N != 8 {
		t.Fatalf("request: %v %v", got, err)
	}
	_, err = Request(ctx, bus, contract, thing{N: 13}, doubledContract, 10*time.Second)
	var remote *RemoteTaskError
	if !errors.As(err, &remote) || remote.RemoteMessage != "unlucky" || remote.RemoteType != "*errors.errorString" {
		t.Fatalf("error reply: %v", err)
	}
	mu.Lock()
	calls := unlucky
	mu.Unlock()
	if calls != 2 {
		t.Fatalf("the retry answers nothing, the last attempt does: the error came after %d calls", calls)
	}

	connection, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer connection.Close()
	channel, err := connection.Channel()
	if err != nil {
		t.Fatal(err)
	}
	parked, ok, err := channel.Get(DeadLetterQueue("rr-"+suffix+".test.ask.v1"), true)
	if err != nil || !ok || parked.ReplyTo != "" || parked.CorrelationId == "" || parked.Headers[ReasonHeader] != "handler_error" {
		t.Fatalf("the park copy answers no one: %+v %v %v", parked, ok, err)
	}
	silent := contract.OnExchange(exchange + "-silent")
	must(t, channel.ExchangeDeclare(silent.Exchange, "topic", true, false, false, false, nil))
	_, err = channel.QueueDeclare("rr-silent-"+suffix, false, false, true, false, nil)
	must(t, err)
	must(t, channel.QueueBind("rr-silent-"+suffix, "#", silent.Exchange, false, nil))
	_, err = Request(ctx, bus, silent, thing{N: 1}, doubledContract, 300*time.Millisecond)
	if !errors.Is(err, ErrRequestTimeout) {
		t.Fatalf("no responder: %v", err)
	}

	// A workflow step: its next step and its report go out before the ack.
	next := exchange + "-next"
	must(t, channel.ExchangeDeclare(next, "topic", true, false, false, false, nil))
	must(t, channel.ExchangeDeclare(ReportsExchange, "topic", true, false, false, false, nil))
	probe := "rr-probe-" + suffix
	_, err = channel.QueueDeclare(probe, false, false, true, false, nil)
	must(t, err)
	must(t, channel.QueueBind(probe, "k", next, false, nil))
	must(t, channel.QueueBind(probe, StepCompletedType, ReportsExchange, false, nil))
	workflowID := uuid.NewString()
	o, err := bus.outgoing(contract.Type, exchange, contract.RoutingKey, contract.SchemaID, []byte(`{"n":5}`),
		PublishOptions{ID: StepEventID(workflowID, "1")})
	must(t, err)
	o.message.Headers[WorkflowHeader] = workflowID
	o.message.Headers[StepHeader] = "1"
	o.message.Headers[SlipHeader] = `{"v":1,"next":[{"step":"2","type":"test.doubled.v1","exchange":"` + next +
		`","routing_key":"k","args":{},"input":"merge"}]}`
	must(t, firstError(bus.publisher.publish(ctx, []*outgoing{o})))
	deliveries, err := channel.Consume(probe, "", true, true, false, false, nil)
	must(t, err)
	seen := map[string]amqp.Delivery{}
	for len(seen) < 2 {
		select {
		case d := <-deliveries:
			seen[d.Type] = d
		case <-ctx.Done():
			t.Fatalf("only %d of 2 messages arrived", len(seen))
		}
	}
	forwarded := seen["test.doubled.v1"]
	if forwarded.MessageId != StepEventID(workflowID, "2") || string(forwarded.Body) != `{"n":10}` ||
		forwarded.Headers[WorkflowHeader] != workflowID || forwarded.Headers[StepHeader] != "2" {
		t.Fatalf("forwarded: %+v", forwarded)
	}
	var report StepCompleted
	must(t, json.Unmarshal(seen[StepCompletedType].Body, &report))
	if report.WorkflowID != workflowID || report.Step != "1" || report.Type != "test.ask.v1" || report.Attempt != 1 ||
		report.ResultType == nil || *report.ResultType != "test.doubled.v1" || report.Join != nil {
		t.Fatalf("report: %s", seen[StepCompletedType].Body)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
