package main

// CPU cost per event of what the runtime does besides the socket, without a broker:
//
//	go test -bench . -benchmem -cpuprofile cpu.out && go tool pprof -top cpu.out

import (
	"testing"

	eventbus "github.com/eventbus-dev/eventbus/runtimes/go"
)

func BenchmarkDecode(b *testing.B) {
	body, err := contract.Encode(event(1))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := contract.Decode(body, eventbus.DefaultLimits); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	e := event(1)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := contract.Encode(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckBody(b *testing.B) {
	body, _ := contract.Encode(event(1))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if refused := eventbus.CheckBody(body, eventbus.DefaultLimits); refused != nil {
			b.Fatal(refused)
		}
	}
}

func BenchmarkParseEnvelope(b *testing.B) {
	body, _ := contract.Encode(event(1))
	headers := eventbus.BuildHeaders(eventbus.Attributes{ID: "x", Source: "/s", Type: contract.Type, Time: "2026-01-01T00:00:00Z",
		DataSchema: contract.SchemaID}, nil)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := eventbus.ParseEnvelope(headers, eventbus.JSONContentType, body); err != nil {
			b.Fatal(err)
		}
	}
}
