# The two commands: `make run` starts a working single node; `make test`
# runs every test. Both install what they need first.
GO ?= go
# Packages whose tests start the protoactor runtime run without the race
# detector (the library has races of its own); every other package runs
# with it.
MODULE := github.com/switchboard-dev/switchboard
ACTOR_PKGS := $(MODULE)/actors $(MODULE)/cluster $(MODULE)/gateway $(MODULE)/e2e $(MODULE)/client
RACE_PKGS = $(filter-out $(ACTOR_PKGS),$(shell $(GO) list ./...))
# Code-generation and lint tools, pinned, installed into bin/tools so the
# check does not depend on whatever happens to be on the machine's PATH.
TOOLS := $(CURDIR)/bin/tools
STATICCHECK_VERSION := v0.8.2
PROTOC_GEN_GO_VERSION := v1.36.12

.PHONY: run test build vet check tools proto bench deps fuzz

deps:
	@./scripts/ensure-deps.sh

build:
	@echo "==> building bin/switchboard"
	@$(GO) build -o bin/switchboard ./cmd/switchboard

run: deps build
	@echo "==> starting a single node (PostgreSQL under .data/, embedded search)"
	@./bin/switchboard dev

vet:
	@echo "==> go vet"
	@$(GO) vet ./...

# check fails when a Go file is not gofmt-ed, when go.mod/go.sum are not tidy, when staticcheck reports
# anything, or when the committed protobuf code is not what the pinned
# generator makes of messages.proto. The protoc version line of the header is
# ignored: it names whichever Debian protoc ran, not a difference in the code.
check: tools
	@echo "==> gofmt"
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); if [ -n "$$out" ]; then echo "not gofmt-ed:"; echo "$$out"; exit 1; fi
	@echo "==> layering (no import against the data flow)"
	@./scripts/check-layers.sh
	@echo "==> go mod tidy -diff"
	@$(GO) mod tidy -diff
	@echo "==> staticcheck"
	@$(TOOLS)/staticcheck ./...
	@echo "==> generated protobuf code is current"
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		PATH="$(TOOLS):$$PATH" protoc --go_out="$$tmp" --go_opt=paths=source_relative -I . actors/actorpb/messages.proto && \
		{ diff -u -I '^//[[:space:]]*protoc[[:space:]]' actors/actorpb/messages.pb.go "$$tmp/actors/actorpb/messages.pb.go" || \
		{ echo "actors/actorpb/messages.pb.go is stale: run make proto"; exit 1; }; }

tools:
	@./scripts/ensure-deps.sh protoc
	@GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

test:
	@./scripts/ensure-deps.sh chromium etcd node
	@$(MAKE) --no-print-directory vet
	@$(MAKE) --no-print-directory check
	@echo "==> tests with the race detector: state machines, queues, persistence, search, load tool"
	@$(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)
	@echo "==> tests that start the actor runtime (no race detector)"
	@$(GO) test -count=1 -timeout 30m $(ACTOR_PKGS)
	@$(MAKE) --no-print-directory fuzz

# Each fuzz target runs FUZZTIME on top of its committed seed corpus
# (testdata/fuzz/); README "Fuzzing" says how to run them for longer. A count
# of executions rather than a duration: with a duration, Go's fuzz coordinator
# can report its own deadline as a failure ("context deadline exceeded") when
# a loaded machine is slow to stop its workers.
FUZZTIME ?= 10000x
FUZZ_TARGETS := ./domain/validate:FuzzRules ./domain/conversation:FuzzDecideIsSafeToStore ./gateway:FuzzRESTBodies ./wire:FuzzDecodeClientFrame
fuzz:
	@echo "==> fuzzing, $(FUZZTIME) per target"
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -parallel 2 $$pkg; \
	done

proto:
	@./scripts/ensure-deps.sh protoc
	@$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc --go_out=. --go_opt=paths=source_relative -I . actors/actorpb/messages.proto

bench: build
	@./scripts/ensure-deps.sh jq
	@./scripts/bench.sh
