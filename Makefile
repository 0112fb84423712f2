# ladder's two commands: `make run` and `make test`. Each installs what it
# needs: ONNX Runtime comes from scripts/install-ort.sh (or your own copy,
# named by LADDER_ONNXRUNTIME_LIB).

GO ?= go
ORT_LIB = $(shell ./scripts/install-ort.sh)

.PHONY: run test ort testdata bench lint

## run: load the bundled models and show the ladder at work
run:
	LADDER_ONNXRUNTIME_LIB=$(ORT_LIB) $(GO) run ./examples/degrade

## test: the whole suite with the race detector (no skips when CI is set)
test: lint
	LADDER_ONNXRUNTIME_LIB=$(ORT_LIB) $(GO) test -race -count=1 ./...

## bench: the benchmark and chaos harness, short profile
bench:
	LADDER_ONNXRUNTIME_LIB=$(ORT_LIB) $(GO) run ./examples/chaosbench -profile short

## ort: fetch and verify ONNX Runtime into .cache/ (idempotent)
ort:
	@./scripts/install-ort.sh

## testdata: regenerate the test models and data (needs Debian's python3-onnx, python3-sklearn, python3-numpy)
testdata:
	/usr/bin/python3 testdata/gen/gen.py

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
