# The Make targets are the project's interface: `make help` lists them.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
# Pinned tool versions (fetched into .tools/ by `make tools`).
HELM3_VERSION := 3.18.0
HELM4_VERSION := 4.1.4
CHECKOV_VERSION := 3.3.30
README_GENERATOR_VERSION := 2.7.2
export HELM3 := $(CURDIR)/$(TOOLS)/helm-$(HELM3_VERSION)/helm
export HELM4 := $(CURDIR)/$(TOOLS)/helm-$(HELM4_VERSION)/helm
export CHECKOV := $(CURDIR)/$(TOOLS)/checkov/bin/checkov
export README_GENERATOR := $(CURDIR)/$(TOOLS)/node_modules/.bin/readme-generator
CHART_NAME := $(shell sed -n 's/^name: *//p' Chart.yaml)
VERSION := $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/p' Chart.yaml)
REGISTRY ?= localhost:5000/tao-kfp

##@ Getting started
help: ## List the targets
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

setup: $(VENV)/.installed ## Create .venv with the package, the CPU backend and the test tools

$(VENV)/.installed: pyproject.toml Chart.yaml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[cpu,dev,e2e]'
	touch $@

tools: $(HELM3) $(HELM4) $(CHECKOV) $(README_GENERATOR) ## Fetch pinned helm 3 and 4, checkov and the README generator into .tools/

$(CURDIR)/$(TOOLS)/helm-%/helm:
	hack/get-helm.sh $* $(TOOLS)/helm-$*

$(CHECKOV):
	hack/get-checkov.sh $(CHECKOV_VERSION) $(TOOLS)/checkov

$(README_GENERATOR):
	npm install --silent --no-audit --no-fund --prefix $(TOOLS) @bitnami/readme-generator-for-helm@$(README_GENERATOR_VERSION)

demo: setup ## Run the whole pipeline on this machine's CPU (digits dataset) and print a summary
	$(VENV)/bin/tao-kfp run-local --output .demo

##@ Development
compile: setup ## Recompile files/pipelines/tao-classification.yaml from pipeline_src/
	$(VENV)/bin/tao-kfp compile

docs: tools ## Regenerate the README values table from the @param comments in values.yaml
	hack/gen-docs.sh

lint: setup tools ## ruff, helm lint --strict (Helm 3 and 4), shellcheck
	$(VENV)/bin/ruff check pipeline_src tests hack
	$(VENV)/bin/ruff format --check pipeline_src tests hack
	$(HELM3) lint --strict . 
	$(HELM4) lint --strict .
	$(VENV)/bin/shellcheck hack/*.sh images/tao-step/bin/* images/tools/entrypoint.sh

check-generated: setup tools ## Fail when the compiled pipeline or the README values table is stale
	$(VENV)/bin/tao-kfp compile --check
	hack/gen-docs.sh --check

test: lint check-generated ## Everything CI runs: lint, generated-file checks, unit, chart, upload and local pipeline tests
	$(VENV)/bin/pytest

e2e: setup tools ## Build the images here (podman, Debian base) and run every chart pod and the pipeline in containers
	hack/e2e.sh

test-cluster: setup tools ## Smoke tests against the cluster in KUBECONFIG (see hack/kind-up.sh)
	$(VENV)/bin/pytest -m cluster tests/cluster

##@ Release
images: ## Build the TAO step and tools images with docker or podman, tagged $(VERSION)
	hack/build-images.sh build $(REGISTRY) $(VERSION)

base-image: ## Build a Debian bookworm base with python3 from apt packages (no registry needed): PYTHON_IMAGE for make images
	hack/build-base-image.sh

push: ## Push the images: make push REGISTRY=registry.example.com/team
	hack/build-images.sh push $(REGISTRY) $(VERSION)

package: tools ## Write dist/$(CHART_NAME)-$(VERSION).tgz (chart files and the precompiled pipeline only)
	mkdir -p dist
	$(HELM3) package . --destination dist

kind-up: tools ## Create a kind cluster with standalone KFP and install the chart
	hack/kind-up.sh

kind-down: ## Delete the kind cluster
	hack/kind-down.sh

clean: ## Remove .venv, .tools, dist and local run outputs
	rm -rf $(VENV) $(TOOLS) dist .demo .local-runs

.PHONY: help setup tools demo compile docs lint check-generated test e2e test-cluster images base-image push package kind-up kind-down clean
