package eventbus

import (
	"strconv"
	"strings"
	"testing"
)

// The same cases as the Python SDK's tests/sdk/test_limits.py: every language parks the same
// bodies for the same reasons.
func TestBadBodiesGetTheReasonPythonGives(t *testing.T) {
	limits := InputLimits{MaxBodyBytes: 1000, MaxDepth: 5}
	cases := []struct{ body, reason string }{
		{`{"a": "` + strings.Repeat("x", 1000) + `"}`, "body_too_large"},
		{`[[[[[[1]]]]]]`, "too_deep"},
		{`{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}`, "too_deep"},
		{`{"a": 1, "a": 2}`, "duplicate_key"},
		{`{"a": {"b": 1, "c": 2, "b": 3}}`, "duplicate_key"},
		{`{"a" : 1, "b": 2, "b" : 3}`, "duplicate_key"},
		{`{"a": 1, "\u0061": 2}`, "duplicate_key"},
		{`{"n": 123456789012345678901234567890}`, "number_out_of_range"},
		{`{"n": 9223372036854775808}`, "number_out_of_range"},
		{`{"n": -9223372036854775809}`, "number_out_of_range"},
		{`18446744073709551616`, "number_out_of_range"},
		{"{\"a\": \"\xff\xfe\"}", "invalid_json"},
		{`{"a": "\ud800"}`, "invalid_json"},
		{`{"a": "\udc00x"}`, "invalid_json"},
		{"\xef\xbb\xbf{}", "invalid_json"},
		{`{"a": NaN}`, "invalid_json"},
		{`{"a": 1e400}`, "invalid_json"},
		{`{"conversation_id": `, "invalid_json"},
	}
	for _, c := range cases {
		got := CheckBody([]byte(c.body), limits)
		if got == nil || got.Reason != c.reason {
			t.Errorf("%q: got %v, want %s", c.body, got, c.reason)
		}
	}
}

func TestGoodBodiesPass(t *testing.T) {
	limits := InputLimits{MaxBodyBytes: 1000, MaxDepth: 5}
	many := `{"k0": 0`
	for i := 1; i < 40; i++ {
		many += `, "k` + strconv.Itoa(i) + `": 1`
	}
	for _, body := range []string{
		`[[[[[1]]]]]`,
		`{"s": "[[[[[[[[[[{{{{{{{{"}`,
		`{"s": "\"[[[[[[[[[[", "t": "\\"}`,
		`{"n": 9223372036854775807, "m": -9223372036854775808}`,
		`{"f": 1.5e300, "g": 12345678901234567890.5}`,
		`{"id": "12345678901234567890123", "text": "a\": b"}`,
		`{"a": 1, "b": {"a": 1}}`,
		`{"pair": "\ud83d\ude00", "empty": {}, "list": [], "t": true, "f": false, "z": null}`,
		many + `}`,
	} {
		if got := CheckBody([]byte(body), limits); got != nil {
			t.Errorf("%q: refused as %s (%s)", body, got.Reason, got.Message)
		}
	}
}

func TestDuplicateKeysAmongManyAreFound(t *testing.T) {
	body := `{"k0": 0`
	for i := 1; i < 40; i++ {
		body += `, "k` + strings.Repeat("x", i) + `": 1`
	}
	body += `, "kxxx": 2}`
	if got := CheckBody([]byte(body), DefaultLimits); got == nil || got.Reason != "duplicate_key" || !strings.Contains(got.Message, "'kxxx'") {
		t.Fatalf("got %v", got)
	}
}

func TestDuplicateKeysCanBeAllowed(t *testing.T) {
	if got := CheckBody([]byte(`{"a": 1, "a": 2}`), InputLimits{AllowDuplicateKeys: true}); got != nil {
		t.Fatalf("got %v", got)
	}
}

func TestLimitMessagesReadAsPythonsDo(t *testing.T) {
	got := CheckBody([]byte(`[[[[[[1]]]]]]`), InputLimits{MaxDepth: 5})
	if got.Message != "JSON nested 6 levels deep exceeds the limit of 5" {
		t.Fatal(got.Message)
	}
	got = CheckBody([]byte(`"0123456789"`), InputLimits{MaxBodyBytes: 5})
	if got.Message != "body of 12 bytes exceeds the limit of 5" {
		t.Fatal(got.Message)
	}
}
