module eventbus.example/wfdemo

go 1.19

require github.com/eventbus-dev/eventbus/runtimes/go v0.2.0

require (
	github.com/gomodule/redigo v1.8.3 // indirect
	github.com/google/uuid v1.3.0 // indirect
	github.com/rabbitmq/amqp091-go v1.5.0 // indirect
	github.com/xeipuuv/gojsonpointer v0.0.0-20190905194746-02993c407bfb // indirect
	github.com/xeipuuv/gojsonreference v0.0.0-20180127040603-bd5ef7bd5415 // indirect
	github.com/xeipuuv/gojsonschema v1.2.0 // indirect
)
