package eventbus

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
)

type slipVectors struct {
	WorkflowID string   `json:"workflow_id"`
	Known      []string `json:"known"`
	Cases      []struct {
		Name    string          `json:"name"`
		Slip    string          `json:"slip"`
		Input   json.RawMessage `json:"input"`
		Actions json.RawMessage `json:"actions"`
		Error   string          `json:"error"`
	} `json:"cases"`
}

// canonical decodes JSON text as plain values, so two encodings of one value compare equal.
func canonical(t *testing.T, data []byte) any {
	t.Helper()
	var value any
	if err := json.Unmarshal(data, &value); err != nil {
		t.Fatalf("not JSON: %v: %s", err, data)
	}
	return value
}

// actionsJSON is what the vectors write for a list of actions.
func actionsJSON(t *testing.T, workflowID string, actions []Action) []byte {
	t.Helper()
	out := make([]any, 0, len(actions))
	for _, action := range actions {
		if p := action.Publish; p != nil {
			var slip any
			if err := json.Unmarshal([]byte(EncodeSlip(p.Slip)), &slip); err != nil {
				t.Fatal(err)
			}
			out = append(out, map[string]any{"publish": map[string]any{
				"step": p.Frame.Step, "type": p.Frame.Type, "exchange": p.Frame.Exchange, "routing_key": p.Frame.RoutingKey,
				"event_id": StepEventID(workflowID, p.Frame.Step), "body": p.Body, "slip": slip,
			}})
			continue
		}
		j := action.Join
		out = append(out, map[string]any{"join": map[string]any{
			"group": j.Frame.Join, "index": j.Frame.Index, "size": j.Frame.Size, "result": j.Result,
			"next": FramesJSON(j.Next), "on_error": FramesJSON(j.OnError),
		}})
	}
	return compactJSON(out)
}

func TestSlipVectors(t *testing.T) {
	raw, err := os.ReadFile("../../tests/conformance/vectors/slip.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors slipVectors
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, name := range vectors.Known {
		known[name] = true
	}
	if len(vectors.Cases) < 20 {
		t.Fatalf("only %d cases", len(vectors.Cases))
	}
	for _, c := range vectors.Cases {
		c := c
		t.Run(c.Name, func(t *testing.T) {
			slip, err := ParseSlip(c.Slip, func(name string) bool { return known[name] })
			var slipErr *SlipError
			if c.Error == "invalid_slip" {
				if !errors.As(err, &slipErr) {
					t.Fatalf("want invalid_slip, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			var input any
			if len(c.Input) > 0 {
				if input, err = decodeJSONValue(c.Input); err != nil {
					t.Fatal(err)
				}
			}
			actions, err := Advance(slip.Next, input, slip.OnError)
			var resultErr *StepResultError
			if c.Error == "workflow_result_invalid" {
				if !errors.As(err, &resultErr) {
					t.Fatalf("want workflow_result_invalid, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("advance: %v", err)
			}
			got, want := canonical(t, actionsJSON(t, vectors.WorkflowID, actions)), canonical(t, c.Actions)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("actions differ:\n got %s\nwant %s", actionsJSON(t, vectors.WorkflowID, actions), c.Actions)
			}
		})
	}
}

func TestSlipRoundTripsThroughItsEncoding(t *testing.T) {
	text := `{"v":1,"next":[{"group":"g","members":[[{"step":"a","type":"t.v1","exchange":"","routing_key":"q","args":{"n":12345678901234567890},"input":"field","field":"f"}],[{"join":"h","index":0,"size":1}]]}],"on_error":[{"step":"e","type":"t.v1","exchange":"x","routing_key":"k","args":{},"input":"none"}]}`
	slip, err := ParseSlip([]byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	if again := EncodeSlip(slip); !reflect.DeepEqual(canonical(t, []byte(again)), canonical(t, []byte(text))) {
		t.Fatalf("round trip changed the slip: %s", again)
	}
	if _, err := ParseSlip(42, nil); err == nil {
		t.Fatal("a number header was accepted")
	}
	if _, err := ParseSlip(`{"v":1,"next":[]} {}`, nil); err == nil {
		t.Fatal("trailing data was accepted")
	}
}
