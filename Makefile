# Spool developer commands. `make` alone lists them.
.DEFAULT_GOAL := help
.PHONY: help fmt lint test doc package bench demo demo-clean ci

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

fmt: ## Format the code
	cargo fmt --all

lint: ## Format check and clippy with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test: ## Run every test (installs redis-server / chromium when missing)
	./scripts/test.sh

doc: ## Build the API docs with warnings as errors
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

package: ## Package the publishable crates as crates.io would (dry run, no upload)
	cargo package --workspace --exclude spool-tests --no-verify --allow-dirty

bench: ## Throughput, latency and memory benchmark (100k jobs)
	cargo run --release --bin spool-bench -- --jobs 100000 --concurrency 200

demo: ## Run the demo: redis, worker, producer, dashboard
	./scripts/demo.sh

demo-clean: ## The demo from an empty .spool/ (its Redis data and logs)
	./scripts/demo.sh --clean

ci: lint doc package test ## What CI runs (plus a tiny bench smoke run)
	cargo run --release --bin spool-bench -- --jobs 2000 --concurrency 50 --latency-seconds 1
