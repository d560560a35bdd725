# Thin wrappers around `deno task`, for a machine that has make and npm but no Deno:
# tools/bootstrap_deno.sh prints the pinned Deno's path, installing it on first use.
# Every target runs from the repository root. `make help` lists them.

ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
# Recursively expanded: the bootstrap runs only when a recipe uses $(DENO).
DENO = $(or $(shell "$(ROOT)/tools/bootstrap_deno.sh"),$(error Cannot run Deno: tools/bootstrap_deno.sh found or installed none))
# Number of agencies (clients) for gen-compose and dataset.
N ?= 5
# Optional output file for gen-compose (default docker-compose-dev.yaml).
OUT ?=
# A course dataset.zip to import with `make dataset ZIP=path/to/dataset.zip`.
ZIP ?=
# The compose file up, down and logs use (default docker-compose-dev.yaml at the root).
FILE ?=
COMPOSE_FILE_FLAG = $(if $(FILE),--file "$(abspath $(FILE))")

.DEFAULT_GOAL := help
.PHONY: help demo test check build dataset bench up down logs validate-echo gen-compose \
	exercise-branches docker-image docker-compose-up docker-compose-down docker-compose-logs \
	swarm-up swarm-down swarm-logs

help: ## List the targets
	@echo "Usage: make <target> [N=5] [OUT=file] [ZIP=dataset.zip] [FILE=compose file]"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN { FS = ":.*## " } { printf "  %-21s %s\n", $$1, $$2 }'

demo: ## Run the server and agencies locally on generated data
	cd "$(ROOT)" && "$(DENO)" task demo

test: ## Check formatting, lint and types, then run every test
	cd "$(ROOT)" && "$(DENO)" task test

check: ## deno fmt --check, deno lint, deno check
	cd "$(ROOT)" && "$(DENO)" task check

build: ## Build bin/server and bin/client
	cd "$(ROOT)" && "$(DENO)" task build

dataset: ## Generate .data/agency-{1..N}.csv, or import ZIP=dataset.zip
	cd "$(ROOT)" && "$(DENO)" task dataset $(if $(ZIP),import "$(abspath $(ZIP))",generate --agencies $(N))

bench: ## Run the benchmarks
	cd "$(ROOT)" && "$(DENO)" task bench

up: ## Build the images and start the compose deployment (a fresh draw after down)
	cd "$(ROOT)" && "$(DENO)" task up $(COMPOSE_FILE_FLAG)

down: ## Stop and remove the compose deployment and its bets (kept only with --keep-bets)
	cd "$(ROOT)" && "$(DENO)" task down $(COMPOSE_FILE_FLAG)

logs: ## Follow the compose deployment's logs
	cd "$(ROOT)" && "$(DENO)" task logs $(COMPOSE_FILE_FLAG)

validate-echo: ## Check the echo server with nc from the compose network
	cd "$(ROOT)" && "$(DENO)" task validate-echo

gen-compose: ## Write the compose file for N clients (OUT=file to name it)
	cd "$(ROOT)" && "$(DENO)" task gen-compose $(OUT) $(N)

exercise-branches: ## Create or move the local branches ej1 … ej8 (one per course exercise)
	cd "$(ROOT)" && "$(DENO)" task exercise-branches

docker-image: ## Build the server and client images (course name)
	cd "$(ROOT)" && "$(DENO)" task images

docker-compose-up: up ## Same as up (course name)

docker-compose-down: down ## Same as down (course name)

docker-compose-logs: logs ## Same as logs (course name)

swarm-up: ## Deploy N agencies on Docker Swarm (swarm init if needed) and wait for them
	cd "$(ROOT)" && "$(DENO)" task swarm up --clients $(N)

swarm-down: ## Remove the Swarm stack and its bets (a fresh draw next time)
	cd "$(ROOT)" && "$(DENO)" task swarm down

swarm-logs: ## Follow every Swarm service's log
	cd "$(ROOT)" && "$(DENO)" task swarm logs
