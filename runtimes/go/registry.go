package eventbus

import (
	"reflect"
	"sync"
)

// The contracts this process knows: a workflow step's slip may only name these (their bodies
// are validated before anything is published), and a handler's result is mapped to its
// contract by its Go type. Generated packages register every contract they hold in an init
// function; Subscribe registers the contract it consumes.

// knownContract is what the runtime needs of a registered contract, whatever its Go type.
type knownContract interface {
	AnyContract
	Violations(data []byte) ([]SchemaViolation, error)
	schemaID() string
	goType() reflect.Type
	encodeAny(value any) ([]byte, error)
}

var registry = struct {
	sync.RWMutex
	byType   map[string]knownContract
	byGoType map[reflect.Type]knownContract
}{byType: map[string]knownContract{}, byGoType: map[reflect.Type]knownContract{}}

// Register makes contracts known to this process (generated packages call it for all of
// theirs). The first contract registered for an event type or a Go type stays.
func Register(contracts ...AnyContract) {
	registry.Lock()
	defer registry.Unlock()
	for _, contract := range contracts {
		known, ok := contract.(knownContract)
		if !ok {
			continue
		}
		if _, taken := registry.byType[known.EventType()]; !taken {
			registry.byType[known.EventType()] = known
		}
		if _, taken := registry.byGoType[known.goType()]; !taken {
			registry.byGoType[known.goType()] = known
		}
	}
}

// Known says whether a contract of eventType is registered in this process.
func Known(eventType string) bool {
	_, ok := lookupContract(eventType)
	return ok
}

func lookupContract(eventType string) (knownContract, bool) {
	registry.RLock()
	defer registry.RUnlock()
	contract, ok := registry.byType[eventType]
	return contract, ok
}

// contractOfResult is the contract of a handler's result by its Go type (a pointer to a
// struct counts as the struct).
func contractOfResult(result any) (knownContract, any, bool) {
	value := reflect.ValueOf(result)
	if value.Kind() == reflect.Pointer && !value.IsNil() {
		result = value.Elem().Interface()
	}
	registry.RLock()
	defer registry.RUnlock()
	contract, ok := registry.byGoType[reflect.TypeOf(result)]
	return contract, result, ok
}

func (c *Contract[T]) schemaID() string { return c.SchemaID }

func (c *Contract[T]) goType() reflect.Type { return reflect.TypeOf((*T)(nil)).Elem() }

// encodeAny encodes value, which must be a T, checked against the schema.
func (c *Contract[T]) encodeAny(value any) ([]byte, error) {
	event, ok := value.(T)
	if !ok {
		return nil, &ConfigurationError{"eventbus: not a " + c.goType().String()}
	}
	return c.Encode(event)
}

// resultJSON is a handler's result as the JSON input of Advance (numbers kept as written), with
// its contract's type; a nil result is null with no type.
func resultJSON(result any) (any, string, []byte, error) {
	if result == nil {
		return nil, "", nil, nil
	}
	contract, value, ok := contractOfResult(result)
	if !ok {
		return nil, "", nil, &StepResultError{"a handler returned a " + reflect.TypeOf(result).String() +
			"; a step or a request's handler returns a struct of a registered contract, or nil"}
	}
	body, err := contract.encodeAny(value)
	if err != nil {
		return nil, "", nil, &StepResultError{"the handler's result breaks its contract " + contract.EventType() + ": " + err.Error()}
	}
	x, err := decodeJSONValue(body)
	if err != nil {
		return nil, "", nil, &StepResultError{err.Error()}
	}
	return x, contract.EventType(), body, nil
}
