package eventbus

import (
	"fmt"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// A workflow step in the consumer (docs/wire-format.md, "Workflows: the routing slip"): a
// delivery with eventbus-workflow-* headers carries the rest of its workflow. Its slip is read
// strictly before the handler runs (a bad one is parked as invalid_slip); after the handler
// succeeded, the next steps and the step_completed report go out in one confirmed batch before
// the ack; whenever the step is parked, the failed report and the on_error steps go out in the
// same confirmed batch as the park copy. The same behaviour as the Python SDK.

// workflowStep is what the headers say about the step a delivery is.
type workflowStep struct {
	workflowID string
	step       string
	slip       Slip
	readable   bool // the slip was read: its on_error runs when the step fails
}

// stepOf reads a delivery's workflow headers: nil when it is no workflow step, and a
// *SlipError when they are missing or malformed (the step is then parked as invalid_slip, with
// "unknown" for a workflow or step id it does not carry), as Python's workflows._runtime.read_step.
func stepOf(headers amqp.Table) (*workflowStep, error) {
	_, hasID := headers[WorkflowHeader]
	raw, hasSlip := headers[SlipHeader]
	if !hasID && !hasSlip {
		return nil, nil
	}
	step := &workflowStep{workflowID: headerString(headers[WorkflowHeader]), step: headerString(headers[StepHeader])}
	var missing []string
	for _, name := range []string{WorkflowHeader, StepHeader, SlipHeader} {
		value, ok := headers[name]
		if !ok || name != SlipHeader && headerString(value) == "" {
			missing = append(missing, name)
		}
	}
	if step.workflowID == "" {
		step.workflowID = "unknown"
	}
	if step.step == "" {
		step.step = "unknown"
	}
	if len(missing) > 0 {
		return step, &SlipError{"a workflow step without " + strings.Join(missing, ", ")}
	}
	slip, err := ParseSlip(raw, Known)
	if err != nil {
		return step, err
	}
	step.slip, step.readable = slip, true
	return step, nil
}

// stepMessages are the messages of actions' Publishes (validated, with step ids and slips)
// and the Join among them, if any; a body that breaks its contract is a *StepResultError.
func (b *Bus) stepMessages(actions []Action, workflowID string) ([]*outgoing, *JoinAction, error) {
	var messages []*outgoing
	var join *JoinAction
	for _, action := range actions {
		if action.Join != nil {
			join = action.Join
			continue
		}
		frame := action.Publish.Frame
		contract, ok := lookupContract(frame.Type)
		if !ok {
			return nil, nil, &StepResultError{fmt.Sprintf("step %s: contract %s is not known here", frame.Step, frame.Type)}
		}
		body := compactJSON(action.Publish.Body)
		problems, err := contract.Violations(body)
		if err == nil && len(problems) > 0 {
			shown := make([]string, 0, 5)
			for i, p := range problems {
				if i < 5 {
					shown = append(shown, p.InstancePath+": "+p.Message)
				}
			}
			err = fmt.Errorf("%s", strings.Join(shown, "; "))
		}
		if err != nil {
			return nil, nil, &StepResultError{fmt.Sprintf("the input of step %s breaks %s: %v", frame.Step, frame.Type, err)}
		}
		o, err := b.outgoing(frame.Type, frame.Exchange, frame.RoutingKey, contract.schemaID(), body,
			PublishOptions{ID: StepEventID(workflowID, frame.Step)})
		if err != nil {
			return nil, nil, err
		}
		o.message.Headers[WorkflowHeader] = workflowID
		o.message.Headers[StepHeader] = frame.Step
		o.message.Headers[SlipHeader] = EncodeSlip(action.Publish.Slip)
		messages = append(messages, o)
	}
	return messages, join, nil
}

// forwardStep is the batch that moves the workflow on after step's handler returned result:
// the next steps, then the step_completed report (with the join, when there is one).
func (s *Subscription) forwardStep(step *workflowStep, meta *EventContext, result any, started time.Time) ([]*outgoing, error) {
	var messages []*outgoing
	var join *JoinAction
	resultType := ""
	if len(step.slip.Next) == 0 { // the branch ends here: whatever it returned moves nothing on
		if contract, _, ok := contractOfResult(result); ok && result != nil {
			resultType = contract.EventType()
		}
	} else {
		x, kind, _, err := resultJSON(result)
		if err != nil {
			return nil, err
		}
		resultType = kind
		actions, err := Advance(step.slip.Next, x, step.slip.OnError)
		if err != nil {
			return nil, err
		}
		if messages, join, err = s.bus.stepMessages(actions, step.workflowID); err != nil {
			return nil, err
		}
	}
	report := StepCompleted{
		WorkflowID: step.workflowID, Step: step.step, Type: meta.Type, Attempt: meta.Attempt,
		StartedAt: FormatTime(started), FinishedAt: FormatTime(time.Now()),
	}
	if resultType != "" {
		report.ResultType = &resultType
	}
	if join != nil {
		report.Join = &JoinReport{Group: join.Frame.Join, Index: join.Frame.Index, Size: join.Frame.Size,
			Result: join.Result, Next: FramesJSON(join.Next), OnError: FramesJSON(join.OnError)}
	}
	completed := s.bus.report(StepCompletedType, "step_completed", ReportID(step.workflowID, step.step, "completed"), report)
	return append(messages, completed), nil
}

// failedStep is what goes out beside the park copy of a workflow step: the failed report and
// advance(on_error, failure) when the slip could be read. An on_error step whose body cannot be
// made from the failure is left out (logged): the park copy and the report still go.
func (s *Subscription) failedStep(step *workflowStep, d *amqp.Delivery, reason ParkReason, attempt int, now time.Time) []*outgoing {
	if step == nil {
		return nil
	}
	eventType, messageID := d.Type, d.MessageId
	if attrs, _, err := ParseEnvelope(d.Headers, d.ContentType, d.Body); err == nil {
		eventType, messageID = attrs.Type, attrs.ID
	}
	if attempt < 1 {
		attempt = 1
	}
	failure := WorkflowFailed{
		WorkflowID: step.workflowID, Step: step.step, Type: orUnknown(eventType), MessageID: orUnknown(messageID),
		Attempt: attempt, Reason: reason.Code, ErrorType: orUnknown(reason.ErrorType), Error: reason.Error,
		Queue: DeadLetterQueue(s.Queue), FailedAt: FormatTime(now),
	}
	batch := []*outgoing{s.bus.report(WorkflowFailedType, "failed", ReportID(step.workflowID, step.step, "failed"), failure)}
	if !step.readable || len(step.slip.OnError) == 0 {
		return batch
	}
	actions, err := Advance(step.slip.OnError, failure.asJSON(), nil)
	var messages []*outgoing
	if err == nil {
		messages, _, err = s.bus.stepMessages(actions, step.workflowID)
	}
	if err != nil {
		s.bus.options.Logger.Error("cannot start the workflow's on_error steps", "workflow", step.workflowID, "error", err.Error())
		return batch
	}
	return append(batch, messages...)
}

func orUnknown(text string) string {
	if text == "" {
		return "unknown"
	}
	return text
}
