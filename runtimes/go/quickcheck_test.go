package eventbus

import (
	"regexp"
	"testing"
)

// Two documents in the shape of the contracts: a relative $ref into a shared document, every
// keyword the quick check knows, and one it does not (oneOf).
var quickSchemas = map[string]string{
	"https://x.test/common/user.json": `{"$schema": "http://json-schema.org/draft-07/schema#", "$id": "https://x.test/common/user.json",
		"definitions": {"UserId": {"type": "string", "minLength": 1, "maxLength": 8, "pattern": "^[a-z0-9_]+$"}}}`,
	"https://x.test/chat/ended.json": `{"$schema": "http://json-schema.org/draft-07/schema#", "$id": "https://x.test/chat/ended.json",
		"type": "object", "additionalProperties": false, "required": ["id", "people", "at", "count", "by"],
		"x-eventbus": {"type": "chat.ended.v1"},
		"properties": {
			"id": {"type": "string", "minLength": 1},
			"people": {"type": "array", "items": {"$ref": "../common/user.json#/definitions/UserId"}, "minItems": 2, "maxItems": 4, "uniqueItems": true},
			"at": {"description": "when", "type": "string", "format": "date-time"},
			"count": {"type": "integer", "minimum": 0, "exclusiveMaximum": 1000},
			"by": {"type": "object", "propertyNames": {"$ref": "../common/user.json#/definitions/UserId"}, "additionalProperties": {"type": "integer", "minimum": 0}},
			"reason": {"type": "string", "enum": ["done", "left"]},
			"score": {"type": ["number", "null"], "maximum": 10},
			"mode": {"const": "x"},
			"tag": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
			"odd": {"oneOf": [{"type": "string"}, {"type": "integer"}]}
		}}`,
}

type quickEvent struct{}

// TestTheQuickCheckNeverPassesWhatGojsonschemaRefuses checks documents against both validators:
// whenever the quick check says valid, gojsonschema finds no violation; every invalid document
// still gets gojsonschema's reasons.
func TestTheQuickCheckNeverPassesWhatGojsonschemaRefuses(t *testing.T) {
	contract := NewContract[quickEvent]("chat.ended.v1", "chat", "chat.ended.v1", "https://x.test/chat/ended.json", quickSchemas,
		"https://x.test/common/user.json")
	schema, err := contract.compiled()
	if err != nil {
		t.Fatal(err)
	}
	rest := `"people": ["ann", "bob"], "at": "2026-11-25T17:00:00Z", "count": 3, "by": {"ann": 2, "bob": 0}`
	base := `"id": "c1", "people": ["ann", "bob"], "at": "2026-11-25T17:00:00Z", "count": 3, "by": {"ann": 2}`
	cases := []struct {
		body  string
		quick bool // the quick check decides alone
		valid bool
	}{
		{`{` + base + `}`, true, true},
		{`{` + base + `, "reason": "done", "score": 9.5, "mode": "x", "tag": 4}`, false, true}, // 9.5 against a bound: gojsonschema's
		{`{` + base + `, "reason": "done", "score": null, "mode": "x", "tag": "t"}`, true, true},
		{`{` + base + `, "count": 3.0}`, false, true}, // an integer written as 3.0: gojsonschema decides
		{`{` + base + `, "odd": 1}`, false, true},     // oneOf: gojsonschema decides
		{`{` + base + `, "people": ["ann", "ann"]}`, false, false},
		{`{` + base + `, "people": ["ann"]}`, false, false},
		{`{` + base + `, "people": ["ann", "BOB"]}`, false, false},
		{`{` + base + `, "people": ["ann", "bob", 1]}`, false, false},
		{`{` + base + `, "people": ["ann", "bobbybobby"]}`, false, false},
		{`{` + base + `, "at": "2026-11-25 17:00"}`, false, false},
		{`{` + base + `, "count": -1}`, false, false},
		{`{` + base + `, "count": 1000}`, false, false},
		{`{` + base + `, "count": "3"}`, false, false},
		{`{` + base + `, "by": {"Ann": 2}}`, false, false},
		{`{` + base + `, "by": {"ann": -2}}`, false, false},
		{`{` + base + `, "reason": "other"}`, false, false},
		{`{` + base + `, "score": 11}`, false, false},
		{`{` + base + `, "mode": "y"}`, false, false},
		{`{` + base + `, "tag": true}`, false, false},
		{`{` + base + `, "odd": true}`, false, false},
		{`{` + base + `, "extra": 1}`, false, false},
		{`{"id": "c1"}`, false, false},
		{"{" + rest + `, "id": "c\u00e9", "reason": "d\u006fne"}`, true, true},                                                  // escapes decoded as encoding/json does
		{"{" + base + `, "people": ["ann", "\u0061nn"]}`, false, false},                                                         // the same string, spelt twice
		{`{"id": "c1", "id": "c2", "people": ["ann", "bob"], "at": "2026-11-25T17:00:00Z", "count": 3, "by": {}}`, false, true}, // a key twice
		{"{" + base + `, "tag": "t", "score": -1e400}`, false, true},                                                            // beyond a double: gojsonschema's big.Rat
		{" \n{" + rest + `, "id": "é", "tag": 1} `, true, true},
		{"{" + rest + `, "id": "c1", "tag": 1.5}`, false, false},
		{`[]`, false, false},
		{`null`, false, false},
	}
	for _, c := range cases {
		document, err := decodeUsingNumber([]byte(c.body))
		if err != nil {
			t.Fatal(err)
		}
		result, err := schema.Validate(decoded{document})
		if err != nil {
			t.Fatal(err)
		}
		if result.Valid() != c.valid {
			t.Errorf("gojsonschema says %v for %s", result.Valid(), c.body)
		}
		if quick := contract.quick.validJSON([]byte(c.body)); quick != c.quick {
			t.Errorf("the quick check says %v for %s", quick, c.body)
		}
		problems, err := contract.Violations([]byte(c.body))
		if err != nil || (len(problems) == 0) != c.valid || len(problems) != len(result.Errors()) {
			t.Errorf("Violations gave %v, %v for %s", problems, err, c.body)
		}
	}
}

func TestSchemasTheQuickCheckCannotFollowLeaveItToGojsonschema(t *testing.T) {
	for _, text := range []string{
		`{"$id": "https://x.test/a.json", "$ref": "#"}`,
		`{"$id": "https://x.test/a.json", "$ref": "other.json"}`,
		`{"$id": "https://x.test/a.json", "properties": {"a": {"$id": "https://x.test/b.json", "type": "string"}}}`,
		`{"$id": "https://x.test/a.json", "type": "object", "patternProperties": {"^a": {"type": "string"}}}`,
		`{"$id": "https://x.test/a.json", "type": "object", "minimum": 0.5}`,
		`{"$id": "https://x.test/a.json", "enum": [1, "a"]}`,
		`false`,
	} {
		node := compileQuick(map[string]string{"https://x.test/a.json": text}, "https://x.test/a.json")
		for _, body := range []string{`{"a": "x"}`, `{"a": "x", "b": 1}`} { // each is left to gojsonschema
			if node.validJSON([]byte(body)) {
				t.Errorf("%s passed %s", text, body)
			}
		}
	}
}

func TestCharsetsAgreeWithTheirRegexp(t *testing.T) {
	texts := []string{"", "a", "u_1842", "user-77", "A:b.c", "a b", "a\n", "\na", "é", "a\xff", "-", "_", "ABCxyz019", "a$", "[", "^a"}
	for _, pattern := range []string{`^[A-Za-z0-9_-]+$`, `^[A-Za-z0-9_:.-]+$`, `^[a-z]*$`, `^[^a]+$`, `(?i)^[a-c]+$`, `^[\w]+$`, `^\d+$`} {
		set := charsetOf(pattern)
		if set == nil {
			t.Fatalf("%s is not a charset", pattern)
		}
		expression := regexp.MustCompile(pattern)
		for _, text := range texts {
			if set.matches(text) && !expression.MatchString(text) {
				t.Errorf("%s: the charset matches %q, the regexp does not", pattern, text)
			}
			if !set.matches(text) && expression.MatchString(text) && isASCII(text) {
				t.Errorf("%s: the regexp matches the ASCII %q, the charset does not", pattern, text)
			}
		}
	}
	for _, pattern := range []string{`^[a-z]+`, `[a-z]+$`, `^[a-z]+$|^1$`, `^a[a-z]+$`, `(?m)^[a-z]+$`, `^[a-z]{2}$`, `^([a-z])+$`} {
		if set := charsetOf(pattern); set != nil {
			t.Errorf("%s taken for a charset", pattern)
		}
	}
}

func isASCII(text string) bool {
	for i := 0; i < len(text); i++ {
		if text[i] >= 128 {
			return false
		}
	}
	return true
}
