module eventbus.example/wfharness

go 1.19
