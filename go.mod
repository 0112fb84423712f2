module github.com/ladder-ml/ladder

go 1.26.8

require (
	github.com/patrickmn/go-cache v2.1.0+incompatible
	github.com/yalue/onnxruntime_go v1.27.0
	go.uber.org/goleak v1.3.0
)

require github.com/stretchr/testify v1.11.1 // indirect
