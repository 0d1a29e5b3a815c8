package eventbus

import (
	"bytes"
	"encoding/json"
	"github.com/xeipuuv/gojsonreference"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/xeipuuv/gojsonschema"
)

// A quick check in front of gojsonschema, which stays the validator that decides.
//
// gojsonschema 1.2.0 walks a schema generically and spends most of a delivery's CPU doing so:
// uniqueItems alone encodes, decodes and encodes every array item again. The quick check is
// compiled once per contract from the same draft-07 texts and answers only "certainly valid"
// or "don't know": it knows a subset of the keywords (type, properties, required,
// additionalProperties, propertyNames, min/maxProperties, items, min/maxItems, uniqueItems of
// strings, min/maxLength, pattern, format, enum and const of strings, integer bounds, allOf,
// anyOf, $ref) and says "don't know" for anything else: another keyword anywhere in a node, a
// number that is not a plain integer, a non-string enum, a ref it cannot resolve. Each check
// it does is the one gojsonschema does (the same regexp package, rune counts, the same format
// checkers), so "certainly valid" implies gojsonschema finds no violation; on "don't know"
// gojsonschema runs and its answer, with every reason, is the result. Setting
// EVENTBUS_GO_VALIDATION_CROSSCHECK=1 runs gojsonschema after every "certainly valid" too and
// panics on a disagreement: the tests and the corpus run that way to prove the implication.

type kinds uint8

const (
	kindNull kinds = 1 << iota
	kindBoolean
	kindObject
	kindArray
	kindNumber
	kindInteger
	kindString
)

var kindNames = map[string]kinds{"null": kindNull, "boolean": kindBoolean, "object": kindObject, "array": kindArray,
	"number": kindNumber, "integer": kindInteger, "string": kindString}

// annotations change nothing gojsonschema checks.
var annotations = map[string]bool{"$schema": true, "$id": true, "$comment": true, "title": true, "description": true,
	"examples": true, "default": true, "definitions": true, "$defs": true, "deprecated": true, "readOnly": true, "writeOnly": true}

type quickNode struct {
	unknown      bool  // a keyword the quick check does not know: always "don't know"
	pass         bool  // the schema true
	types        kinds // 0: any
	ref          *quickNode
	minLength    int64
	maxLength    int64
	pattern      *regexp.Regexp
	charset      *charset // the pattern when it is ^[class]+$ or ^[class]*$
	format       string
	strings      map[string]bool // enum / const: the allowed strings (non-nil when present)
	minimum      *int64
	maximum      *int64
	exclMin      *int64
	exclMax      *int64
	items        *quickNode
	minItems     int64
	maxItems     int64
	unique       bool
	props        map[string]*quickNode
	required     []string
	additional   *quickNode // nil: any
	noAdditional bool
	names        *quickNode
	minProps     int64
	maxProps     int64
	allOf, anyOf []*quickNode
}

type quickCompiler struct {
	documents map[string]interface{} // decoded schema texts by $id
	nodes     map[string]*quickNode  // by absolute reference, so recursive refs terminate
}

// compileQuick compiles the schema schemaID; texts holds every schema text by $id.
func compileQuick(texts map[string]string, schemaID string) *quickNode {
	c := &quickCompiler{documents: map[string]interface{}{}, nodes: map[string]*quickNode{}}
	for id, text := range texts {
		document, err := decodeUsingNumber([]byte(text))
		if err != nil {
			return &quickNode{unknown: true}
		}
		c.documents[id] = document
	}
	return c.reference(schemaID, schemaID)
}

// reference compiles what ref (relative to base, a document's $id) points at.
func (c *quickCompiler) reference(base, ref string) *quickNode {
	baseURL, err := url.Parse(base)
	if err != nil {
		return &quickNode{unknown: true}
	}
	target, err := url.Parse(ref)
	if err != nil {
		return &quickNode{unknown: true}
	}
	resolved := baseURL.ResolveReference(target)
	key := resolved.String()
	if node, ok := c.nodes[key]; ok {
		return node
	}
	fragment := resolved.Fragment
	resolved.Fragment = ""
	document := resolved.String()
	value, ok := c.documents[document]
	if !ok {
		return &quickNode{unknown: true}
	}
	if fragment != "" {
		if !strings.HasPrefix(fragment, "/") {
			return &quickNode{unknown: true}
		}
		for _, token := range strings.Split(fragment[1:], "/") {
			token = strings.ReplaceAll(strings.ReplaceAll(token, "~1", "/"), "~0", "~")
			object, isObject := value.(map[string]interface{})
			if value, ok = object[token]; !isObject || !ok {
				return &quickNode{unknown: true}
			}
		}
	}
	node := &quickNode{}
	c.nodes[key] = node
	*node = *c.compile(document, value, fragment == "")
	if node.ref == node {
		node.ref, node.unknown = nil, true // {"$ref": "#"}: nothing to check
	}
	return node
}

func integer(value interface{}) (int64, bool) {
	number, ok := value.(json.Number)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(number), 10, 64)
	return n, err == nil
}

// compile turns one schema object into a node; base is the $id of its document.
func (c *quickCompiler) compile(base string, schema interface{}, root bool) *quickNode {
	if flag, ok := schema.(bool); ok {
		return &quickNode{pass: flag, unknown: !flag}
	}
	object, ok := schema.(map[string]interface{})
	if !ok {
		return &quickNode{unknown: true}
	}
	if ref, ok := object["$ref"].(string); ok { // gojsonschema ignores the siblings of $ref
		return &quickNode{ref: c.reference(base, ref)}
	}
	node := &quickNode{maxLength: -1, maxItems: -1, maxProps: -1}
	count := func(value interface{}) int64 {
		n, ok := integer(value)
		if !ok || n < 0 {
			node.unknown = true
		}
		return n
	}
	bound := func(value interface{}) *int64 {
		n, ok := integer(value)
		if !ok {
			node.unknown = true
		}
		return &n
	}
	list := func(value interface{}) []*quickNode {
		items, _ := value.([]interface{})
		if len(items) == 0 {
			node.unknown = true
		}
		nodes := make([]*quickNode, len(items))
		for i, item := range items {
			nodes[i] = c.compile(base, item, false)
		}
		return nodes
	}
	for key, value := range object {
		switch key {
		case "type":
			names, isList := value.([]interface{})
			if !isList {
				names = []interface{}{value}
			}
			for _, name := range names {
				text, _ := name.(string)
				if kind, known := kindNames[text]; known {
					node.types |= kind
				} else {
					node.unknown = true
				}
			}
		case "minLength":
			node.minLength = count(value)
		case "maxLength":
			node.maxLength = count(value)
		case "pattern":
			text, _ := value.(string)
			expression, err := regexp.Compile(text)
			if err != nil {
				node.unknown = true
			}
			node.pattern, node.charset = expression, charsetOf(text)
		case "format":
			node.format, _ = value.(string)
		case "enum", "const":
			values, isList := value.([]interface{})
			if key == "const" {
				values = []interface{}{value}
			} else if !isList {
				node.unknown = true
			}
			node.strings = map[string]bool{}
			for _, allowed := range values {
				text, isText := allowed.(string)
				if !isText {
					node.unknown = true // compared as JSON text by gojsonschema: left to it
				}
				node.strings[text] = true
			}
		case "minimum":
			node.minimum = bound(value)
		case "maximum":
			node.maximum = bound(value)
		case "exclusiveMinimum":
			node.exclMin = bound(value)
		case "exclusiveMaximum":
			node.exclMax = bound(value)
		case "items":
			if _, isList := value.([]interface{}); isList {
				node.unknown = true
			}
			node.items = c.compile(base, value, false)
		case "minItems":
			node.minItems = count(value)
		case "maxItems":
			node.maxItems = count(value)
		case "uniqueItems":
			node.unique, _ = value.(bool)
		case "properties":
			properties, _ := value.(map[string]interface{})
			node.props = make(map[string]*quickNode, len(properties))
			for name, property := range properties {
				node.props[name] = c.compile(base, property, false)
			}
		case "required":
			names, _ := value.([]interface{})
			for _, name := range names {
				text, isText := name.(string)
				if !isText {
					node.unknown = true
				}
				node.required = append(node.required, text)
			}
		case "additionalProperties":
			if flag, isFlag := value.(bool); isFlag {
				node.noAdditional = !flag
			} else {
				node.additional = c.compile(base, value, false)
			}
		case "propertyNames":
			node.names = c.compile(base, value, false)
		case "minProperties":
			node.minProps = count(value)
		case "maxProperties":
			node.maxProps = count(value)
		case "allOf":
			node.allOf = list(value)
		case "anyOf":
			node.anyOf = list(value)
		case "$id":
			if id, _ := value.(string); !root || id != base {
				node.unknown = true // a new base for the refs inside: left to gojsonschema
			}
		default:
			if !annotations[key] && !strings.HasPrefix(key, "x-") {
				node.unknown = true
			}
		}
	}
	return node
}

// plainInteger is a JSON number written as an integer that fits in int64.
func plainInteger(number json.Number) (int64, bool) {
	text := string(number)
	digits := strings.TrimPrefix(text, "-")
	if digits == "" || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	return n, err == nil
}

// target follows $refs to the node that checks; a cycle of refs alone checks nothing.
func (n *quickNode) target() *quickNode {
	for hops := 0; n.ref != nil; hops++ {
		if hops > 32 {
			return &quickNode{unknown: true}
		}
		n = n.ref
	}
	return n
}

// valid is true when the scalar value (a property name, say) certainly satisfies the node,
// false when gojsonschema must decide.
func (n *quickNode) valid(value interface{}) bool {
	n = n.target()
	if n.unknown {
		return false
	}
	if n.pass {
		return true
	}
	for _, all := range n.allOf {
		if !all.valid(value) {
			return false
		}
	}
	if len(n.anyOf) > 0 {
		any := false
		for _, branch := range n.anyOf {
			if branch.valid(value) {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	switch v := value.(type) {
	case nil:
		return (n.types == 0 || n.types&kindNull != 0) && n.strings == nil
	case bool:
		return (n.types == 0 || n.types&kindBoolean != 0) && n.strings == nil
	case string:
		return n.validString(v)
	case json.Number:
		return n.validNumber(v)
	}
	return false // arrays and objects are walked in their JSON text (quickwalk.go)
}

func (n *quickNode) validString(v string) bool {
	if n.types != 0 && n.types&kindString == 0 {
		return false
	}
	if n.strings != nil && !n.strings[v] {
		return false
	}
	if n.minLength > 0 || n.maxLength >= 0 {
		runes := int64(utf8.RuneCountInString(v))
		if runes < n.minLength || (n.maxLength >= 0 && runes > n.maxLength) {
			return false
		}
	}
	if n.pattern != nil && !n.charset.matches(v) && !n.pattern.MatchString(v) {
		return false
	}
	return n.format == "" || gojsonschema.FormatCheckers.IsFormat(n.format, v)
}

func (n *quickNode) validNumber(v json.Number) bool {
	if n.strings != nil || n.format != "" {
		return false
	}
	integral, isInt := plainInteger(v)
	if n.types != 0 && n.types&kindNumber == 0 && !(isInt && n.types&kindInteger != 0) {
		return false
	}
	if n.minimum == nil && n.maximum == nil && n.exclMin == nil && n.exclMax == nil {
		return true
	}
	return isInt && (n.minimum == nil || integral >= *n.minimum) && (n.maximum == nil || integral <= *n.maximum) &&
		(n.exclMin == nil || integral > *n.exclMin) && (n.exclMax == nil || integral < *n.exclMax)
}

// crossCheck: run gojsonschema after the quick check too, and panic when they disagree.
var crossCheck = os.Getenv("EVENTBUS_GO_VALIDATION_CROSSCHECK") == "1"

// decodeUsingNumber decodes JSON exactly as gojsonschema's own loaders do.
func decodeUsingNumber(data []byte) (interface{}, error) {
	var document interface{}
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber()
	if err := decoder.Decode(&document); err != nil {
		return nil, err
	}
	return document, nil
}

// decoded hands gojsonschema a document already decoded by decodeUsingNumber (its NewGoLoader
// would encode and decode it again).
type decoded struct{ document interface{} }

func (d decoded) JsonSource() interface{}        { return d.document }
func (d decoded) LoadJSON() (interface{}, error) { return d.document, nil }
func (d decoded) LoaderFactory() gojsonschema.JSONLoaderFactory {
	return gojsonschema.DefaultJSONLoaderFactory{}
}
func (d decoded) JsonReference() (gojsonreference.JsonReference, error) {
	return gojsonreference.NewJsonReference("#")
}
