package eventbus

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/xeipuuv/gojsonschema"
)

// gojsonschema 1.2.0 checks only the path part of a URI template, so a query expression such as
// "https://x/notifications{?since,all}" fails there while every other binding accepts it. This
// checker follows RFC 6570's syntax, as Ajv's (TypeScript) and jsonschema-rs's (Python) do.
var uriTemplate = regexp.MustCompile(`(?i)^(?:[^\x00-\x20"'<>%\\^` + "`" + `{|}]|%[0-9a-f]{2}|\{[+#./;?&=,!@|]?(?:[a-z0-9_]|%[0-9a-f]{2})+(?::[1-9][0-9]{0,3}|\*)?(?:,(?:[a-z0-9_]|%[0-9a-f]{2})+(?::[1-9][0-9]{0,3}|\*)?)*\})*$`)

type uriTemplateChecker struct{}

func (uriTemplateChecker) IsFormat(input interface{}) bool {
	text, ok := input.(string)
	return !ok || uriTemplate.MatchString(text)
}

func init() {
	gojsonschema.FormatCheckers.Add("uri-template", uriTemplateChecker{})
}

// Contract is everything the bus knows about one event type, with the Go type of its data.
//
// The JSON Schema is the authority, as in every binding: gojsonschema checks data against the
// embedded schema (translated from draft 2020-12 to draft-07 by the code generator) before an
// event is published and after one is received. Generated modules make one per event with
// NewContract.
type Contract[T any] struct {
	Type       string
	Exchange   string
	RoutingKey string
	SchemaID   string
	schemas    map[string]string
	resources  []string
	once       sync.Once
	schema     *gojsonschema.Schema
	quick      *quickNode
	compileErr error
}

// NewContract describes one event type; schemas holds the embedded schema texts by $id and
// resources the $ids the event's schema refers to.
func NewContract[T any](eventType, exchange, routingKey, schemaID string, schemas map[string]string, resources ...string) *Contract[T] {
	return &Contract[T]{Type: eventType, Exchange: exchange, RoutingKey: routingKey, SchemaID: schemaID,
		schemas: schemas, resources: resources}
}

func (c *Contract[T]) compiled() (*gojsonschema.Schema, error) {
	c.once.Do(func() {
		loader := gojsonschema.NewSchemaLoader()
		loader.Draft = gojsonschema.Draft7
		for _, id := range c.resources {
			if err := loader.AddSchema(id, gojsonschema.NewStringLoader(c.schemas[id])); err != nil {
				c.compileErr = fmt.Errorf("schema %s: %w", id, err)
				return
			}
		}
		c.schema, c.compileErr = loader.Compile(gojsonschema.NewStringLoader(c.schemas[c.SchemaID]))
		if c.compileErr == nil {
			c.quick = compileQuick(c.schemas, c.SchemaID)
		}
	})
	return c.schema, c.compileErr
}

// OnExchange returns the same contract published to (and consumed from) another exchange, e.g.
// a tenant's or a test's own.
func (c *Contract[T]) OnExchange(exchange string) *Contract[T] {
	return NewContract[T](c.Type, exchange, c.RoutingKey, c.SchemaID, c.schemas, c.resources...)
}

// Violations lists every reason the JSON document data breaks the schema (none when it is valid).
//
// The quick check (quickcheck.go) walks data first; gojsonschema, the validator that decides,
// checks every document the quick check does not certainly pass, with every reason.
func (c *Contract[T]) Violations(data []byte) ([]SchemaViolation, error) {
	return c.violations(data, json.Valid(data))
}

// violations is Violations for data that may be known to be one valid JSON text already (the
// input limits checked it, or encoding/json wrote it), so the quick check need not ask again.
func (c *Contract[T]) violations(data []byte, valid bool) ([]SchemaViolation, error) {
	schema, err := c.compiled()
	if err != nil {
		return nil, err
	}
	quick := valid && c.quick.walk(data)
	if quick && !crossCheck {
		return nil, nil
	}
	document, err := decodeUsingNumber(data)
	if err != nil {
		return nil, err
	}
	result, err := schema.Validate(decoded{document})
	if err != nil {
		return nil, err
	}
	var problems []SchemaViolation
	for _, problem := range result.Errors() {
		path := "/"
		if field := problem.Field(); field != "(root)" {
			path = "/" + strings.ReplaceAll(field, ".", "/")
		}
		problems = append(problems, SchemaViolation{InstancePath: path, SchemaPath: "#" + problem.Type(), Message: problem.Description()})
	}
	if quick && len(problems) > 0 {
		panic(fmt.Sprintf("eventbus: the quick check passed a %s event gojsonschema refuses: %v", c.Type, problems))
	}
	return problems, nil
}

// Decode applies the input limits, checks body against the schema and returns it as the event;
// an *EnvelopeError (the limits' reasons) or a *ValidationError says why not.
func (c *Contract[T]) Decode(body []byte, limits InputLimits) (T, error) {
	var event T
	if refused := CheckBody(body, limits); refused != nil {
		return event, refused
	}
	if err := c.validate(body); err != nil { // CheckBody found it valid JSON
		return event, err
	}
	if err := json.Unmarshal(body, &event); err != nil {
		violation := SchemaViolation{InstancePath: "/", SchemaPath: "(go type)", Message: err.Error()}
		return event, &ValidationError{EventType: c.Type, Violations: []SchemaViolation{violation}}
	}
	return event, nil
}

// Encode returns the exact body bytes of event, checked against the schema first.
func (c *Contract[T]) Encode(event T) ([]byte, error) {
	body, err := json.Marshal(event)
	if err == nil {
		err = c.validate(body)
	}
	if err != nil {
		return nil, err
	}
	return body, nil
}

// validate is nil when data satisfies the schema, else a *ValidationError with every reason.
func (c *Contract[T]) validate(data []byte) error {
	problems, err := c.violations(data, true) // from CheckBody or json.Marshal: one valid JSON text
	if err == nil && len(problems) > 0 {
		err = &ValidationError{EventType: c.Type, Violations: problems}
	}
	return err
}

// AnyContract is a Contract seen without its Go type, for code that starts from an event type
// string (routers, taps, test harnesses): the data goes in and out as JSON.
type AnyContract interface {
	EventType() string
	// Reencode decodes data as the event (validated) and encodes it again: what a Go service
	// holding the typed value would send.
	Reencode(data []byte) ([]byte, error)
	PublishJSON(ctx context.Context, bus *Bus, data []byte, options PublishOptions) (string, error)
	// PublishManyJSON is PublishMany for JSON data: one id and one error per item.
	PublishManyJSON(ctx context.Context, bus *Bus, data [][]byte, options []PublishOptions) ([]string, []error)
	SubscribeJSON(ctx context.Context, bus *Bus, handler TypedHandler[json.RawMessage], options SubscribeOptions) (*Subscription, error)
}

// EventType is the CloudEvents type of the contract.
func (c *Contract[T]) EventType() string { return c.Type }

// Reencode decodes data into T and encodes it back.
func (c *Contract[T]) Reencode(data []byte) ([]byte, error) {
	event, err := c.Decode(data, DefaultLimits)
	if err != nil {
		return nil, err
	}
	return c.Encode(event)
}

// PublishJSON decodes data into T and publishes it.
func (c *Contract[T]) PublishJSON(ctx context.Context, bus *Bus, data []byte, options PublishOptions) (string, error) {
	event, err := c.Decode(data, DefaultLimits)
	if err != nil {
		return "", err
	}
	return Publish(ctx, bus, c, event, options)
}

// PublishManyJSON decodes every item into T and publishes them as one batch.
func (c *Contract[T]) PublishManyJSON(ctx context.Context, bus *Bus, data [][]byte, options []PublishOptions) ([]string, []error) {
	events := make([]T, len(data))
	for i, item := range data {
		event, err := c.Decode(item, DefaultLimits)
		if err != nil {
			errs := make([]error, len(data))
			for j := range errs {
				errs[j] = err
			}
			return make([]string, len(data)), errs
		}
		events[i] = event
	}
	return PublishMany(ctx, bus, c, events, options)
}

// SubscribeJSON subscribes with a handler that gets the typed event re-encoded as JSON.
func (c *Contract[T]) SubscribeJSON(ctx context.Context, bus *Bus, handler TypedHandler[json.RawMessage], options SubscribeOptions) (*Subscription, error) {
	return Subscribe(ctx, bus, c, func(ctx context.Context, event T, meta EventContext) error {
		data, err := json.Marshal(event)
		if err != nil {
			return err
		}
		return handler(ctx, data, meta)
	}, options)
}
