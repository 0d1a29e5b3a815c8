package eventbus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func testSubscription(handler Handler, timeout time.Duration) *Subscription {
	s := &Subscription{Queue: "svc.t.v1", eventType: "t.v1", handler: handler, timeout: timeout,
		bus: &Bus{options: Options{Limits: DefaultLimits, Logger: NopLogger{}}}}
	s.hard, s.cancelHard = context.WithCancel(context.Background())
	s.decode = func(data []byte) (any, error) {
		if refused := CheckBody(data, DefaultLimits); refused != nil {
			return nil, refused
		}
		return string(data), nil
	}
	return s
}

func TestMiddlewareWrapsHandlersOutermostFirst(t *testing.T) {
	var order []string
	layer := func(name string) Middleware {
		return func(next Handler) Handler {
			return func(ctx context.Context, m *Message) error {
				order = append(order, name)
				return next(ctx, m)
			}
		}
	}
	handler := compose(func(context.Context, *Message) error { order = append(order, "handler"); return nil },
		[]Middleware{layer("bus-1"), layer("bus-2")}, []Middleware{layer("subscription")})
	if err := handler(context.Background(), &Message{}); err != nil || strings.Join(order, ",") != "bus-1,bus-2,subscription,handler" {
		t.Fatalf("%v %v", order, err)
	}
}

func TestAHandlerPastItsLimitFailsWithHandlerTimeoutError(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := testSubscription(func(ctx context.Context, _ *Message) error {
		<-release // ignores its context, as a careless handler would
		return nil
	}, 20*time.Millisecond)
	err := s.call(&Message{Context: EventContext{Type: "t.v1", ID: "e-1"}})
	var timeout *HandlerTimeoutError
	if !errors.As(err, &timeout) || FailureReason(err).Code != "handler_timeout" {
		t.Fatalf("%T %v", err, err)
	}
}

func TestAPanickingHandlerIsAFailureNotACrash(t *testing.T) {
	s := testSubscription(func(context.Context, *Message) error { panic("boom") }, time.Second)
	if err := s.call(&Message{}); err == nil || err.Error() != "panic: boom" {
		t.Fatalf("%v", err)
	}
}

func TestAHandlerCutOffByShutdownIsHandedBackNotFailed(t *testing.T) {
	s := testSubscription(func(ctx context.Context, _ *Message) error { <-ctx.Done(); return ctx.Err() }, time.Minute)
	go func() { time.Sleep(10 * time.Millisecond); s.cancelHard() }()
	if err := s.call(&Message{}); !errors.Is(err, errCutOff) {
		t.Fatalf("%v", err)
	}
}

func TestPrepareParksWithPythonsReasonsInPythonsOrder(t *testing.T) {
	s := testSubscription(nil, time.Second)
	headers := amqp.Table{"cloudEvents_specversion": "1.0", "cloudEvents_id": "e-1", "cloudEvents_source": "/s",
		"cloudEvents_type": "t.v1", "cloudEvents_partitionkey": "p-1"}
	other := amqp.Table{"cloudEvents_specversion": "1.0", "cloudEvents_id": "e-2", "cloudEvents_source": "/s", "cloudEvents_type": "t.v2"}
	cases := []struct {
		delivery amqp.Delivery
		reason   string
	}{
		{amqp.Delivery{Headers: headers, Body: []byte(strings.Repeat(" ", 2<<20))}, "body_too_large"},
		{amqp.Delivery{Headers: amqp.Table{}, Body: []byte(`{}`)}, "missing_attribute"},
		{amqp.Delivery{Headers: other, Body: []byte(`{}`)}, "unsupported_event_type"},
		{amqp.Delivery{Headers: headers, Body: []byte(`{"a": 1, "a": 2}`)}, "duplicate_key"},
		{amqp.Delivery{Headers: headers, ContentType: "text/plain", Body: []byte(`{}`)}, "unsupported_content_type"},
	}
	for _, c := range cases {
		c := c
		if _, reason := s.prepare(&c.delivery); reason == nil || reason.Code != c.reason {
			t.Errorf("%s: %+v", c.reason, reason)
		}
	}
	retried := amqp.Delivery{Headers: amqp.Table{}, Exchange: DeliverExchange, Body: []byte(`{"ok": true}`)}
	for k, v := range headers {
		retried.Headers[k] = v
	}
	retried.Headers[AttemptHeader] = int64(3)
	retried.Headers[OriginalExchangeHeader] = "chat"
	retried.Headers[OriginalRoutingKeyHeader] = "t.v1"
	message, reason := s.prepare(&retried)
	if reason != nil {
		t.Fatal(reason)
	}
	meta := message.Context
	if meta.Attempt != 3 || meta.Exchange != "chat" || meta.RoutingKey != "t.v1" || meta.PartitionKey != "p-1" || meta.Queue != "svc.t.v1" || message.Event != `{"ok": true}` {
		t.Errorf("%+v", meta)
	}
}
