module github.com/ladder-ml/ladder

go 1.26.8

require (
	github.com/failsafe-go/failsafe-go v0.9.8
	github.com/patrickmn/go-cache v2.1.0+incompatible
	github.com/yalue/onnxruntime_go v1.27.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sync v0.24.0
)

require (
	github.com/bits-and-blooms/bitset v1.24.4 // indirect
	golang.org/x/text v0.28.0 // indirect
)
