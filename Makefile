# The two commands: `make run` starts a working single node; `make test`
# runs every test. Both install what they need first.
GO ?= go
# Packages whose tests start the protoactor runtime run without the race
# detector (the library has races of its own, PROTOACTOR.md 10); every other
# package runs with it.
MODULE := github.com/switchboard-dev/switchboard
ACTOR_PKGS := $(MODULE)/actors $(MODULE)/cluster $(MODULE)/gateway $(MODULE)/e2e
RACE_PKGS = $(filter-out $(ACTOR_PKGS),$(shell $(GO) list ./...))

.PHONY: run test build vet proto bench deps fuzz

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

test:
	@./scripts/ensure-deps.sh chromium etcd
	@$(MAKE) --no-print-directory vet
	@echo "==> tests with the race detector: state machines, queues, persistence, search, load tool"
	@$(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)
	@echo "==> tests that start the actor runtime (no race detector)"
	@$(GO) test -count=1 -timeout 30m $(ACTOR_PKGS)
	@$(MAKE) --no-print-directory fuzz

# Each fuzz target runs for FUZZTIME on top of its committed seed corpus
# (testdata/fuzz/); README "Fuzzing" says how to run them for longer.
FUZZTIME ?= 5s
FUZZ_TARGETS := ./domain/validate:FuzzRules ./domain/conversation:FuzzDecideIsSafeToStore ./gateway:FuzzRESTBodies
fuzz:
	@echo "==> fuzzing, $(FUZZTIME) per target"
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -parallel 2 $$pkg; \
	done

proto:
	@./scripts/ensure-deps.sh protoc
	@$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	@PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc --go_out=. --go_opt=paths=source_relative -I . actors/actorpb/messages.proto

bench: build
	@./scripts/ensure-deps.sh jq
	@./scripts/bench.sh
