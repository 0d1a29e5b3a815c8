package eventbus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// The routing slip on the wire, with no I/O (docs/wire-format.md, "Workflows: the routing
// slip"): the same strict parser and the same pure Advance as the Python SDK
// (eventbus/workflows/_slip.py); tests/conformance/vectors/slip.json holds the vectors every
// runtime passes. A slip is input from the wire, so every field is checked and unknown ones are
// refused: a bad slip is parked (invalid_slip) before its step runs.

// The step headers and the slip's limits.
const (
	WorkflowHeader = "eventbus-workflow-id"
	StepHeader     = "eventbus-workflow-step"
	SlipHeader     = "eventbus-workflow-slip"
	MaxSlipBytes   = 65536
	MaxSlipDepth   = 32
)

// WorkflowNamespace is uuid5(NAMESPACE_URL, "https://eventbus.dev/workflow"): step and report
// ids are uuid5 names in it, so a redelivered step forwards the same ids.
var WorkflowNamespace = uuid.MustParse("7b7075fe-be84-533c-9a0c-f28b35b2e486")

var stepID = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// SlipError is a slip that cannot be read (park reason invalid_slip).
type SlipError struct{ Message string }

func (e *SlipError) Error() string { return e.Message }

// StepResultError is a step's result that cannot become its next step's body (park reason
// workflow_result_invalid): it fails the step that produced it, never the next one half-way.
type StepResultError struct{ Message string }

func (e *StepResultError) Error() string { return e.Message }

// Frame is one element of a slip: exactly one of Step, Group, Join is set.
type Frame struct {
	Step  *StepFrame
	Group *GroupFrame
	Join  *JoinFrame
}

// StepFrame publishes one event of contract Type to Exchange/RoutingKey, its body made of Args
// and the input (Input "none", "merge" or "field"; Field only with "field").
type StepFrame struct {
	Step       string
	Type       string
	Exchange   string
	RoutingKey string
	Args       map[string]any
	Input      string
	Field      string
}

// GroupFrame starts every member branch with the same input; their results join as Group.
type GroupFrame struct {
	Group   string
	Members [][]Frame
}

// JoinFrame says: this branch's result is result Index of the Size results of group Join.
type JoinFrame struct {
	Join  string
	Index int
	Size  int
}

// Slip is what remains of a workflow after the step that carries it.
type Slip struct {
	Next    []Frame
	OnError []Frame
}

// Action is one thing Advance says to do: exactly one of Publish, Join is set.
type Action struct {
	Publish *PublishAction
	Join    *JoinAction
}

// PublishAction publishes Body as step Frame.Step carrying Slip.
type PublishAction struct {
	Frame StepFrame
	Body  map[string]any
	Slip  Slip
}

// JoinAction reports Result as member Frame.Index of group Frame.Join (the engine counts it).
type JoinAction struct {
	Frame   JoinFrame
	Result  any
	Next    []Frame
	OnError []Frame
}

// StepEventID is the CloudEvents id of a step's message: the same for every publish of it.
func StepEventID(workflowID, step string) string {
	return uuid.NewSHA1(WorkflowNamespace, []byte(workflowID+"/"+step)).String()
}

// ReportID is the id of a report (what: completed, failed, started, cancelled).
func ReportID(workflowID, step, what string) string {
	return uuid.NewSHA1(WorkflowNamespace, []byte(workflowID+"/"+step+"/"+what)).String()
}

// FrameJSON is the frame as the wire writes it (field only with "input": "field").
func FrameJSON(frame Frame) map[string]any {
	switch {
	case frame.Step != nil:
		s := frame.Step
		args := s.Args
		if args == nil {
			args = map[string]any{}
		}
		out := map[string]any{"step": s.Step, "type": s.Type, "exchange": s.Exchange, "routing_key": s.RoutingKey,
			"args": args, "input": s.Input}
		if s.Input == "field" {
			out["field"] = s.Field
		}
		return out
	case frame.Group != nil:
		members := make([]any, len(frame.Group.Members))
		for i, member := range frame.Group.Members {
			members[i] = FramesJSON(member)
		}
		return map[string]any{"group": frame.Group.Group, "members": members}
	}
	return map[string]any{"join": frame.Join.Join, "index": frame.Join.Index, "size": frame.Join.Size}
}

// FramesJSON is FrameJSON of every frame (an empty list, never null).
func FramesJSON(frames []Frame) []any {
	out := make([]any, len(frames))
	for i, frame := range frames {
		out[i] = FrameJSON(frame)
	}
	return out
}

// EncodeSlip is the slip header's value: compact JSON (on_error only when not empty).
func EncodeSlip(slip Slip) string {
	body := map[string]any{"v": 1, "next": FramesJSON(slip.Next)}
	if len(slip.OnError) > 0 {
		body["on_error"] = FramesJSON(slip.OnError)
	}
	return string(compactJSON(body))
}

// compactJSON encodes a value made of JSON values without escaping HTML characters.
func compactJSON(value any) []byte {
	var buffer bytes.Buffer
	encoder := json.NewEncoder(&buffer)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(value); err != nil {
		panic(fmt.Sprintf("eventbus: cannot encode JSON values: %v", err))
	}
	return bytes.TrimRight(buffer.Bytes(), "\n")
}

// ParseSlip reads a slip header value (string or bytes); known, when not nil, says whether a
// contract is known here (a step frame of an unknown type is refused: its body could not be
// validated before it is published). Every refusal is a *SlipError.
func ParseSlip(raw any, known func(string) bool) (Slip, error) {
	var data []byte
	switch v := raw.(type) {
	case string:
		data = []byte(v)
	case []byte:
		data = v
	default:
		return Slip{}, &SlipError{fmt.Sprintf("the slip header must be a string, got %T", raw)}
	}
	if len(data) > MaxSlipBytes {
		return Slip{}, &SlipError{fmt.Sprintf("the slip is %d bytes, more than %d", len(data), MaxSlipBytes)}
	}
	if !utf8.Valid(data) {
		return Slip{}, &SlipError{"the slip is not UTF-8 JSON: invalid UTF-8"}
	}
	value, err := decodeJSONValue(data)
	if err != nil {
		return Slip{}, &SlipError{"the slip is not UTF-8 JSON: " + err.Error()}
	}
	fields, err := frameFields(value, "slip", []string{"v", "next"}, "on_error")
	if err != nil {
		return Slip{}, err
	}
	if version, ok := fields["v"].(json.Number); !ok || !numberIsOne(version) {
		return Slip{}, &SlipError{fmt.Sprintf("slip version %s is not 1", compactJSON(fields["v"]))}
	}
	var slip Slip
	if slip.Next, err = frameList(fields["next"], "slip.next"); err != nil {
		return Slip{}, err
	}
	if onError, ok := fields["on_error"]; ok {
		if slip.OnError, err = frameList(onError, "slip.on_error"); err != nil {
			return Slip{}, err
		}
	}
	if known != nil {
		types := map[string]bool{}
		stepTypes(slip.Next, types)
		stepTypes(slip.OnError, types)
		var unknown []string
		for t := range types {
			if !known(t) {
				unknown = append(unknown, t)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return Slip{}, &SlipError{"the slip names contract(s) unknown here: " + strings.Join(unknown, ", ")}
		}
	}
	return slip, nil
}

// decodeJSONValue decodes one JSON text with numbers kept as written (json.Number).
func decodeJSONValue(data []byte) (any, error) {
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber()
	var value any
	if err := decoder.Decode(&value); err != nil {
		return nil, err
	}
	if _, err := decoder.Token(); err == nil {
		return nil, fmt.Errorf("extra data after the JSON value")
	}
	return value, nil
}

// numberIsOne is Python's v == 1 for a JSON number (1 and 1.0 alike).
func numberIsOne(n json.Number) bool {
	f, err := n.Float64()
	return err == nil && f == 1
}

func frameFields(value any, where string, required []string, optional ...string) (map[string]any, error) {
	object, ok := value.(map[string]any)
	if !ok {
		return nil, &SlipError{fmt.Sprintf("%s: a frame must be an object, got %s", where, jsonKind(value))}
	}
	var missing, unknown []string
	allowed := map[string]bool{}
	for _, name := range required {
		allowed[name] = true
		if _, ok := object[name]; !ok {
			missing = append(missing, name)
		}
	}
	for _, name := range optional {
		allowed[name] = true
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, &SlipError{fmt.Sprintf("%s: missing %s", where, strings.Join(missing, ", "))}
	}
	for name := range object {
		if !allowed[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, &SlipError{fmt.Sprintf("%s: unknown field(s) %s", where, strings.Join(unknown, ", "))}
	}
	return object, nil
}

func jsonKind(value any) string {
	switch value.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "list"
	}
	return "object"
}

func slipString(value any, where string) (string, error) {
	text, ok := value.(string)
	if !ok || text == "" {
		return "", &SlipError{where + " must be a non-empty string"}
	}
	return text, nil
}

func slipIdent(value any, where string) (string, error) {
	text, ok := value.(string)
	if !ok || !stepID.MatchString(text) {
		return "", &SlipError{fmt.Sprintf("%s must match [A-Za-z0-9_.:-]{1,64}, got %s", where, compactJSON(value))}
	}
	return text, nil
}

func slipInt(value any, where string) (int, error) {
	number, ok := value.(json.Number)
	if ok && !strings.ContainsAny(number.String(), ".eE") {
		if n, err := number.Int64(); err == nil && n >= -1<<31 && n < 1<<31 {
			return int(n), nil
		}
		return 0, &SlipError{fmt.Sprintf("%s is out of range, got %s", where, number)}
	}
	return 0, &SlipError{fmt.Sprintf("%s must be an integer, got %s", where, compactJSON(value))}
}

// ParseFrame reads one frame from its decoded JSON (numbers as json.Number).
func ParseFrame(value any, where string, depth int) (Frame, error) {
	if depth > MaxSlipDepth {
		return Frame{}, &SlipError{fmt.Sprintf("%s: nested deeper than %d", where, MaxSlipDepth)}
	}
	object, _ := value.(map[string]any)
	if _, ok := object["step"]; ok {
		return parseStep(object, where)
	}
	if _, ok := object["group"]; ok {
		v, err := frameFields(object, where, []string{"group", "members"})
		if err != nil {
			return Frame{}, err
		}
		members, ok := v["members"].([]any)
		if !ok || len(members) == 0 {
			return Frame{}, &SlipError{where + ".members must be a non-empty list"}
		}
		group := &GroupFrame{Members: make([][]Frame, len(members))}
		for i, member := range members {
			frames, ok := member.([]any)
			if !ok || len(frames) == 0 {
				return Frame{}, &SlipError{fmt.Sprintf("%s.members[%d] must be a non-empty list of frames", where, i)}
			}
			group.Members[i] = make([]Frame, len(frames))
			for j, f := range frames {
				if group.Members[i][j], err = ParseFrame(f, fmt.Sprintf("%s.members[%d][%d]", where, i, j), depth+1); err != nil {
					return Frame{}, err
				}
			}
		}
		if group.Group, err = slipIdent(v["group"], where+".group"); err != nil {
			return Frame{}, err
		}
		return Frame{Group: group}, nil
	}
	if _, ok := object["join"]; ok {
		v, err := frameFields(object, where, []string{"join", "index", "size"})
		if err != nil {
			return Frame{}, err
		}
		join := &JoinFrame{}
		if join.Index, err = slipInt(v["index"], where+".index"); err != nil {
			return Frame{}, err
		}
		if join.Size, err = slipInt(v["size"], where+".size"); err != nil {
			return Frame{}, err
		}
		if join.Size < 1 || join.Index < 0 || join.Index >= join.Size {
			return Frame{}, &SlipError{fmt.Sprintf("%s: index %d is not in 0…size−1 (size %d)", where, join.Index, join.Size)}
		}
		if join.Join, err = slipIdent(v["join"], where+".join"); err != nil {
			return Frame{}, err
		}
		return Frame{Join: join}, nil
	}
	return Frame{}, &SlipError{where + ": not a step, group or join frame"}
}

func parseStep(object map[string]any, where string) (Frame, error) {
	v, err := frameFields(object, where, []string{"step", "type", "exchange", "routing_key", "args", "input"}, "field")
	if err != nil {
		return Frame{}, err
	}
	step := &StepFrame{}
	mode, _ := v["input"].(string)
	if mode != "none" && mode != "merge" && mode != "field" {
		return Frame{}, &SlipError{fmt.Sprintf("%s.input must be none, merge or field, got %s", where, compactJSON(v["input"]))}
	}
	step.Input = mode
	args, ok := v["args"].(map[string]any)
	if !ok {
		return Frame{}, &SlipError{where + ".args must be an object"}
	}
	step.Args = args
	if _, hasField := v["field"]; (mode == "field") != hasField {
		return Frame{}, &SlipError{where + ": field is given exactly when input is 'field'"}
	}
	if mode == "field" {
		if step.Field, err = slipString(v["field"], where+".field"); err != nil {
			return Frame{}, err
		}
	}
	if step.Exchange, ok = v["exchange"].(string); !ok {
		return Frame{}, &SlipError{where + ".exchange must be a string"}
	}
	if step.Step, err = slipIdent(v["step"], where+".step"); err != nil {
		return Frame{}, err
	}
	if step.Type, err = slipString(v["type"], where+".type"); err != nil {
		return Frame{}, err
	}
	if step.RoutingKey, err = slipString(v["routing_key"], where+".routing_key"); err != nil {
		return Frame{}, err
	}
	return Frame{Step: step}, nil
}

func frameList(value any, where string) ([]Frame, error) {
	list, ok := value.([]any)
	if !ok {
		return nil, &SlipError{where + " must be a list of frames"}
	}
	frames := make([]Frame, len(list))
	for i, item := range list {
		frame, err := ParseFrame(item, fmt.Sprintf("%s[%d]", where, i), 1)
		if err != nil {
			return nil, err
		}
		frames[i] = frame
	}
	return frames, nil
}

func stepTypes(frames []Frame, into map[string]bool) {
	for _, frame := range frames {
		switch {
		case frame.Step != nil:
			into[frame.Step.Type] = true
		case frame.Group != nil:
			for _, member := range frame.Group.Members {
				stepTypes(member, into)
			}
		}
	}
}

// StepBody is the body of frame's event given the input x (before validation against its contract).
func StepBody(frame *StepFrame, x any) (map[string]any, error) {
	body := map[string]any{}
	switch frame.Input {
	case "merge":
		object, ok := x.(map[string]any)
		if !ok {
			return nil, &StepResultError{fmt.Sprintf("step %s (%s) merges its input, which must be an object, got %s",
				frame.Step, frame.Type, jsonKind(x))}
		}
		for key, value := range object {
			body[key] = value
		}
	case "field":
		for key, value := range frame.Args {
			body[key] = value
		}
		body[frame.Field] = x
		return body, nil
	}
	for key, value := range frame.Args {
		body[key] = value
	}
	return body, nil
}

// Advance is what to publish once a branch reached frames with the result x (a JSON value as
// decoded with json.Number numbers, or nil), the same pure function in every runtime.
func Advance(frames []Frame, x any, onError []Frame) ([]Action, error) {
	if len(frames) == 0 {
		return nil, nil
	}
	first, rest := frames[0], frames[1:]
	switch {
	case first.Step != nil:
		body, err := StepBody(first.Step, x)
		if err != nil {
			return nil, err
		}
		next := append([]Frame(nil), rest...)
		return []Action{{Publish: &PublishAction{Frame: *first.Step, Body: body, Slip: Slip{Next: next, OnError: onError}}}}, nil
	case first.Group != nil:
		size := len(first.Group.Members)
		var actions []Action
		for index, member := range first.Group.Members {
			branch := make([]Frame, 0, len(member)+1+len(rest))
			branch = append(branch, member...)
			branch = append(branch, Frame{Join: &JoinFrame{Join: first.Group.Group, Index: index, Size: size}})
			branch = append(branch, rest...)
			more, err := Advance(branch, x, onError)
			if err != nil {
				return nil, err
			}
			actions = append(actions, more...)
		}
		return actions, nil
	}
	return []Action{{Join: &JoinAction{Frame: *first.Join, Result: x, Next: append([]Frame(nil), rest...), OnError: onError}}}, nil
}
