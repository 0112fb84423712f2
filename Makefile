# ladder's two commands: `make run` and `make test`. Each installs what it
# needs: ONNX Runtime comes from scripts/install-ort.sh, once per user, into
# ${XDG_CACHE_HOME:-~/.cache}/ladder/onnxruntime/ (or is your own copy, named
# by LADDER_ONNXRUNTIME_LIB), where models.InitRuntime("") finds it.

GO ?= go

# The chaos harness is a module of its own, so that the library's go.mod
# carries no plotting packages.
BENCH = cmd/chaosbench

# staticcheck 2026.2.2, the latest release, built for Go 1.26.
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: run test ort testdata bench lint serve load

## run: load the bundled models and show the ladder at work
run: ort
	$(GO) run ./examples/degrade

## serve: the example HTTP service on 127.0.0.1:8080, with an admin endpoint to break and heal tiers (see examples/service)
serve: ort
	$(GO) run ./examples/service -addr $(or $(ADDR),127.0.0.1:8080)

## load: wrk against the example service on 127.0.0.1 for about 30 s, faults switched mid-run, against the bare handler (installs wrk)
load: ort
	GO=$(GO) ./scripts/load.sh

## test: lint, then the whole suite with the race detector, harness included (no skips when CI is set), and models' own tests without cgo
test: ort lint
	$(GO) test -race -count=1 ./...
	CGO_ENABLED=0 $(GO) test -count=1 ./models
	cd $(BENCH) && $(GO) test -race -count=1 ./...

## bench: the benchmark and chaos harness, short profile, writing bench-out/
bench: ort
	cd $(BENCH) && $(GO) run . -profile short -out $(CURDIR)/bench-out

## ort: fetch and verify ONNX Runtime into the per-user cache (idempotent); fails when LADDER_ONNXRUNTIME_LIB names a missing file
ort:
	@lib=$$(./scripts/install-ort.sh) && echo "ONNX Runtime: $$lib"

## testdata: regenerate the test models and data (needs Debian's python3-onnx, python3-sklearn, python3-numpy)
testdata:
	/usr/bin/python3 testdata/gen/gen.py

## lint: gofmt, go vet and staticcheck on both modules, a build of the module without cgo (models then only says it needs cgo), and no test code in the commands
lint:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd $(BENCH) && $(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd $(BENCH) && $(GO) run $(STATICCHECK) ./...
	CGO_ENABLED=0 $(GO) build ./...
	CGO_ENABLED=0 $(GO) vet ./models
	@if { $(GO) list -deps ./examples/... && cd $(BENCH) && $(GO) list -deps .; } | grep -qxE 'testing|go.uber.org/goleak'; then \
		echo "lint: a command links testing or goleak; keep test helpers in _test.go files and internal/testenv"; exit 1; fi
