package eventbus

import (
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The workflow reports a step's runtime sends (docs/wire-format.md, "Reports and the engine"),
// field for field the Python SDK's models (eventbus/workflows/_reports.py): CloudEvents in
// binary mode on the topic exchange eventbus.workflow with their type as routing key,
// confirmed and not mandatory (with no engine and no tracking nobody needs them), with
// deterministic ids so a redelivered report is the same report.

// The reports' exchange and types.
const (
	ReportsExchange    = "eventbus.workflow"
	StepCompletedType  = "eventbus.workflow.step_completed.v1"
	WorkflowFailedType = "eventbus.workflow.failed.v1"
)

// JoinReport is a step's result that is member Index of the Size results of group Group.
type JoinReport struct {
	Group   string `json:"group"`
	Index   int    `json:"index"`
	Size    int    `json:"size"`
	Result  any    `json:"result"`
	Next    []any  `json:"next"`
	OnError []any  `json:"on_error"`
}

// StepCompleted says a step's handler succeeded and its next steps were published.
type StepCompleted struct {
	WorkflowID string      `json:"workflow_id"`
	Step       string      `json:"step"`
	Type       string      `json:"type"`
	Attempt    int         `json:"attempt"`
	StartedAt  string      `json:"started_at"`
	FinishedAt string      `json:"finished_at"`
	ResultType *string     `json:"result_type"`
	Join       *JoinReport `json:"join"`
}

// WorkflowFailed says a step was parked, so its workflow failed (the public workflow.failed
// event); it is also the input of the workflow's on_error steps.
type WorkflowFailed struct {
	WorkflowID string `json:"workflow_id"`
	Step       string `json:"step"`
	Type       string `json:"type"`
	MessageID  string `json:"message_id"`
	Attempt    int    `json:"attempt"`
	Reason     string `json:"reason"`
	ErrorType  string `json:"error_type"`
	Error      string `json:"error"`
	Queue      string `json:"queue"`
	FailedAt   string `json:"failed_at"`
}

// asJSON is the report's data as a decoded JSON object (the input of on_error steps).
func (f WorkflowFailed) asJSON() any {
	value, err := decodeJSONValue(compactJSON(f))
	if err != nil {
		panic(err)
	}
	return value
}

// report wraps a report's data as a CloudEvent for eventbus.workflow.
func (b *Bus) report(eventType, name, id string, data any) *outgoing {
	now := time.Now()
	headers := BuildHeaders(Attributes{
		ID: id, Source: b.options.Source, Type: eventType, Time: FormatTime(now),
		DataSchema: "https://eventbus.dev/schemas/workflow/" + name + ".v1.schema.json",
	}, nil)
	return &outgoing{
		exchange: ReportsExchange, routingKey: eventType, label: eventType, declare: ReportsExchange, optional: true,
		message: amqp.Publishing{
			ContentType: JSONContentType, DeliveryMode: amqp.Persistent, MessageId: id, Type: eventType,
			Timestamp: now, AppId: b.options.Source, Headers: headers, Body: compactJSON(data),
		},
	}
}
