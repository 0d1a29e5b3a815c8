package eventbus

// Logger receives what the runtime has to say: reconnects, retries, parked deliveries. The
// runtime never writes to stderr by itself; the default logger discards everything. Fields
// come as alternating keys and values, as in log/slog, which an adapter can pass straight on.
type Logger interface {
	Debug(message string, fields ...any)
	Info(message string, fields ...any)
	Warn(message string, fields ...any)
	Error(message string, fields ...any)
}

// NopLogger discards everything.
type NopLogger struct{}

// Debug discards.
func (NopLogger) Debug(string, ...any) {}

// Info discards.
func (NopLogger) Info(string, ...any) {}

// Warn discards.
func (NopLogger) Warn(string, ...any) {}

// Error discards.
func (NopLogger) Error(string, ...any) {}
