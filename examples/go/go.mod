module eventbus.example/examples/friendship

go 1.19

require eventbus.example/contracts v0.0.0

replace eventbus.example/contracts => ../../generated/go
