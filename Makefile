# raptr: the two commands a new user needs are `make demo` and `make test`.
# Every target installs what it needs (scripts/setup.sh) on a fresh Debian machine.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: setup test demo lint fmt bench fuzz build deploy clean emulator localstack-up release install

setup:
	scripts/setup.sh

## The test suite: unit tests, integration tests judged by dpkg and apt-ftparchive,
## the storage conformance suite on the local adapters and on the emulator, and the
## end-to-end tests (tests/) judged by apt over HTTP against the replica buckets.
## The emulator-bound test binaries run side by side with the rest (scripts/test.sh).
test: setup
	CARGO=$(CARGO) scripts/test.sh

## The whole job on the emulator: bootstrap, aws s3 cp of a bundle built with dpkg
## tools, the functions, a promotion request, apt-get install from a replica over HTTP.
demo: setup
	scripts/demo.sh

## fmt, clippy, and the deployment's own checks: cfn-lint on infra/ (as written and
## SAM-transformed), the LocalStack compose file, every shell script.
lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	scripts/lint-infra.sh

fmt:
	$(CARGO) fmt --all

## Figures, not pass/fail: hashing, scan, the table, ingest, publish, the inventory
## commands, snapshots and imports, next to apt-ftparchive, reprepro and aptly
## (see scripts/bench.sh).
bench: setup
	scripts/bench.sh

## Every fuzz target (fuzz/) for FUZZ_SECONDS each, on the stable toolchain with
## RUSTC_BOOTSTRAP=1; regression inputs first. See shared/formats/README.md.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz: setup
	scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

## An emulator in the foreground, bootstrapped, for trying the AWS CLI against (Ctrl-C stops it).
emulator: setup
	scripts/emulator.sh

## LocalStack (needs a Docker engine), bootstrapped like the emulator.
localstack-up: setup
	localstack/up.sh

## The Lambda deployment zips (cargo-lambda, arm64 unless ARCH=x86_64) in target/lambda/.
build:
	scripts/build-lambdas.sh

## Build, package and deploy infra/template.yaml with the AWS CLI (see infra/README.md).
deploy: setup
	scripts/deploy.sh

## The raptr command-line tool, optimised: target/release/raptr, with its manual
## pages (one per subcommand) and shell completions beside it (target/release/share/).
release:
	$(CARGO) build --release --locked -p raptr
	mkdir -p target/release/share/man/man1 target/release/share/completions
	target/release/raptr man --dir target/release/share/man/man1
	for s in bash zsh fish; do target/release/raptr completions $$s > target/release/share/completions/raptr.$$s; done

## `make release`, then the binary, manual page and bash completion under PREFIX
## (default ~/.local: no root needed).
PREFIX ?= $(HOME)/.local
install: release
	install -D -m 0755 target/release/raptr $(PREFIX)/bin/raptr
	install -d $(PREFIX)/share/man/man1
	install -m 0644 target/release/share/man/man1/*.1 $(PREFIX)/share/man/man1/
	install -D -m 0644 target/release/share/completions/raptr.bash $(PREFIX)/share/bash-completion/completions/raptr

clean:
	$(CARGO) clean
	rm -rf .cache
