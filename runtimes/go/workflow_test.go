package eventbus

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

type doubled struct {
	N int `json:"n"`
}

const doubledSchema = `{"$id": "https://example.test/doubled.json", "type": "object", "required": ["n"],
	"properties": {"n": {"type": "integer", "minimum": 0}}, "additionalProperties": false}`

var doubledContract = NewContract[doubled]("test.doubled.v1", "test", "test.doubled.v1", "https://example.test/doubled.json",
	map[string]string{"https://example.test/doubled.json": doubledSchema})

func init() { Register(doubledContract) }

func TestStepHeadersAreReadStrictly(t *testing.T) {
	if step, err := stepOf(amqp.Table{"other": "x"}); step != nil || err != nil {
		t.Fatalf("a delivery without workflow headers is no step: %v %v", step, err)
	}
	var slipErr *SlipError
	cases := []amqp.Table{
		{WorkflowHeader: "wf", StepHeader: "1"},                                 // no slip
		{SlipHeader: `{"v":1,"next":[]}`, StepHeader: "1"},                      // no workflow id
		{WorkflowHeader: "wf", StepHeader: "", SlipHeader: `{"v":1,"next":[]}`}, // empty step id
		{WorkflowHeader: "wf", StepHeader: "1", SlipHeader: `{"v":1,"next":[{"step":"2","type":"test.nope.v1","exchange":"t","routing_key":"k","args":{},"input":"none"}]}`},
		{WorkflowHeader: "wf", StepHeader: "1", SlipHeader: int32(3)},
	}
	for i, headers := range cases {
		if _, err := stepOf(headers); !errors.As(err, &slipErr) {
			t.Errorf("case %d: want a SlipError, got %v", i, err)
		}
	}
	step, err := stepOf(amqp.Table{WorkflowHeader: "wf", StepHeader: "1",
		SlipHeader: []byte(`{"v":1,"next":[{"step":"2","type":"test.doubled.v1","exchange":"t","routing_key":"k","args":{},"input":"merge"}]}`)})
	if err != nil || !step.readable || step.workflowID != "wf" || step.step != "1" || len(step.slip.Next) != 1 {
		t.Fatalf("a good step: %+v %v", step, err)
	}
}

func TestStepMessagesAreValidatedAndCarryTheStepHeaders(t *testing.T) {
	bus := &Bus{options: Options{Source: "/services/test"}}
	slip, err := ParseSlip(`{"v":1,"next":[{"step":"2","type":"test.doubled.v1","exchange":"t","routing_key":"k","args":{},"input":"merge"},{"join":"g","index":0,"size":1}]}`, Known)
	if err != nil {
		t.Fatal(err)
	}
	actions, err := Advance(slip.Next, map[string]any{"n": json.Number("4")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	messages, join, err := bus.stepMessages(actions, "wf-1")
	if err != nil || len(messages) != 1 || join != nil {
		t.Fatalf("%v %v %v", messages, join, err)
	}
	m := messages[0]
	if m.message.MessageId != StepEventID("wf-1", "2") || m.exchange != "t" || m.routingKey != "k" || string(m.message.Body) != `{"n":4}` {
		t.Fatalf("message: %+v", m)
	}
	if m.message.Headers[WorkflowHeader] != "wf-1" || m.message.Headers[StepHeader] != "2" ||
		m.message.Headers[SlipHeader] != `{"next":[{"index":0,"join":"g","size":1}],"v":1}` {
		t.Fatalf("headers: %v", m.message.Headers)
	}
	actions, _ = Advance(slip.Next, map[string]any{"n": json.Number("-1")}, nil)
	var invalid *StepResultError
	if _, _, err := bus.stepMessages(actions, "wf-1"); !errors.As(err, &invalid) {
		t.Fatalf("a body that breaks its contract: %v", err)
	}
}

func TestResultsMapToTheirContractsByGoType(t *testing.T) {
	x, resultType, body, err := resultJSON(&doubled{N: 3})
	if err != nil || resultType != "test.doubled.v1" || string(body) != `{"n":3}` || !reflect.DeepEqual(x, map[string]any{"n": json.Number("3")}) {
		t.Fatalf("%v %q %s %v", x, resultType, body, err)
	}
	if x, resultType, _, err := resultJSON(nil); x != nil || resultType != "" || err != nil {
		t.Fatal("nil is a null result")
	}
	var invalid *StepResultError
	if _, _, _, err := resultJSON(42); !errors.As(err, &invalid) {
		t.Fatalf("an int is no result: %v", err)
	}
}

func TestRepliesOnTheWire(t *testing.T) {
	bus := &Bus{options: Options{Source: "/services/test"}}
	request := &amqp.Delivery{ReplyTo: "amq.rabbitmq.reply-to.abc", CorrelationId: "c-1"}
	ok := bus.okReply(request, doubled{N: 2})
	if ok.exchange != "" || ok.routingKey != request.ReplyTo || !ok.optional || ok.message.CorrelationId != "c-1" ||
		ok.message.Headers[ReplyStatusHeader] != "ok" || ok.message.Headers["cloudEvents_type"] != "test.doubled.v1" {
		t.Fatalf("ok reply: %+v", ok)
	}
	got, err := readReply(amqp.Delivery{Headers: ok.message.Headers, ContentType: ok.message.ContentType, Body: ok.message.Body},
		doubledContract, "req.v1", "id-1", DefaultLimits)
	if err != nil || got.N != 2 {
		t.Fatalf("read back: %v %v", got, err)
	}
	failed := bus.errorReply(request, "builtins.ValueError", "no")
	_, err = readReply(amqp.Delivery{Headers: failed.message.Headers}, doubledContract, "req.v1", "id-1", DefaultLimits)
	var remote *RemoteTaskError
	if !errors.As(err, &remote) || remote.RemoteType != "builtins.ValueError" || remote.RemoteMessage != "no" {
		t.Fatalf("error reply: %v", err)
	}
	empty := bus.okReply(request, nil)
	if len(empty.message.Body) != 0 || empty.message.Headers["cloudEvents_type"] != nil {
		t.Fatalf("empty reply: %+v", empty)
	}
	if _, err := readReply(amqp.Delivery{Headers: empty.message.Headers}, doubledContract, "r", "i", DefaultLimits); err == nil {
		t.Fatal("an empty reply where a result is expected was accepted")
	}
	notAContract := bus.okReply(request, 42)
	if notAContract.message.Headers[ReplyStatusHeader] != "error" {
		t.Fatalf("a result of no contract is an error reply: %v", notAContract.message.Headers)
	}
}

func TestSingleActiveConsumerQueueArguments(t *testing.T) {
	main, deadLetters := ConsumerQueueSpecs("svc.t.v1", "quorum", 20, true)
	want := amqp.Table{"x-queue-type": "quorum", "x-single-active-consumer": true, "x-delivery-limit": int64(20),
		"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "svc.t.v1.dlq"}
	if !reflect.DeepEqual(main.Arguments, want) || deadLetters.Arguments["x-single-active-consumer"] != nil {
		t.Fatalf("%v %v", main.Arguments, deadLetters.Arguments)
	}
	plain, _ := QueueSpecs("svc.t.v1", "quorum", 20)
	if _, ok := plain.Arguments["x-single-active-consumer"]; ok {
		t.Fatal("other queues are declared as before")
	}
}

func TestRevocationChecksOnlyStepsAndDelayedDeliveriesAndFailWithoutAStore(t *testing.T) {
	if needsCheck(amqp.Table{"cloudEvents_id": "x"}) || !needsCheck(amqp.Table{WorkflowHeader: "w"}) ||
		!needsCheck(amqp.Table{DeliverAtHeader: "2026-01-01T00:00:00Z"}) {
		t.Fatal("only workflow steps and delayed deliveries cost a lookup")
	}
	store := newRevocations("redis://127.0.0.1:1/0") // nothing listens there
	defer store.close()
	if revoked, err := store.revoked("w", "e"); err == nil || revoked {
		t.Fatalf("an unreachable store must be an error, never 'not revoked': %v %v", revoked, err)
	}
	if revoked, err := store.revoked("", ""); err != nil || revoked {
		t.Fatal("no ids, no lookup")
	}
}
