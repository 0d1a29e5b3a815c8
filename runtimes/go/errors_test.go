package eventbus

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestConnectNamesTheBrokerThatDidNotAnswerWithoutItsPassword(t *testing.T) {
	_, err := Connect(context.Background(), Options{Service: "s", URL: "amqp://user:secret@127.0.0.1:1/%2F"})
	var failed *ConnectionFailedError
	if !errors.As(err, &failed) || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "no broker answered at amqp://user:***@127.0.0.1:1/%2F") {
		t.Fatalf("%v", err)
	}
	if _, err := Connect(context.Background(), Options{}); !errors.As(err, new(*ConfigurationError)) {
		t.Fatalf("no service: %v", err)
	}
}
