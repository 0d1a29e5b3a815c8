package eventbus

import "context"

// Message is one valid delivery on its way to a handler: the typed event (Event holds a T for a
// subscription made with Subscribe[T]), its context and the raw body.
type Message struct {
	Event   any
	Context EventContext
	Body    []byte
	Result  any // what a ResultHandler returned (the reply, or a workflow step's result)
}

// Handler handles one message; nil acks it, an error is retried or parked (RetryLater and
// Park steer that).
type Handler func(ctx context.Context, message *Message) error

// Middleware wraps a handler: logging, metrics, deduplication, tracing compose as layers,
// composed once when the subscription is made; a bus without middleware calls handlers directly.
//
//	func logged(next eventbus.Handler) eventbus.Handler {
//		return func(ctx context.Context, m *eventbus.Message) error {
//			err := next(ctx, m)
//			log.Printf("%s %s: %v", m.Context.Type, m.Context.ID, err)
//			return err
//		}
//	}
type Middleware func(Handler) Handler

// TypedHandler handles one event of type T.
type TypedHandler[T any] func(ctx context.Context, event T, meta EventContext) error

func compose(handler Handler, layers ...[]Middleware) Handler {
	for i := len(layers) - 1; i >= 0; i-- {
		for j := len(layers[i]) - 1; j >= 0; j-- {
			handler = layers[i][j](handler)
		}
	}
	return handler
}
