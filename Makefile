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
# Images `make images`/`make push` handle; empty = tao-step tao-deploy-step tools (see hack/build-images.sh).
IMAGES ?=

##@ Getting started
help: ## List the targets
	@awk -v version='$(VERSION)' -v chart='$(CHART_NAME)' 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z0-9_-]+:.*?##/ { gsub(/\$$\(VERSION\)/, version, $$2); gsub(/\$$\(CHART_NAME\)/, chart, $$2); printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

setup: $(VENV)/.installed ## Create .venv with the package, the CPU backend and the test tools

# torch comes from PyTorch's CPU index (about 190 MB): PyPI's Linux wheel is the CUDA build,
# about 2.7 GB with its nvidia-* wheels. Where that index is unreachable, PyPI's torch is used.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_PIN := $(shell sed -n 's/^ *"\(torch==[^"]*\)".*/\1/p' pyproject.toml)

$(VENV)/.installed: pyproject.toml Chart.yaml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --timeout 20 --retries 1 --index-url $(TORCH_INDEX) '$(TORCH_PIN)' \
	  || { echo "PyTorch's CPU index unreachable: installing $(TORCH_PIN) from PyPI (on Linux the CUDA build, about 2.7 GB)"; \
	       $(PY) -m pip install --quiet '$(TORCH_PIN)'; }
	$(PY) -m pip install --quiet -e '.[cpu,dev,e2e]'
	touch $@

tools: $(HELM3) $(HELM4) $(CHECKOV) $(README_GENERATOR) ## Fetch pinned helm 3 and 4, checkov and the README generator into .tools/

$(CURDIR)/$(TOOLS)/helm-%/helm:
	hack/get-helm.sh $* $(TOOLS)/helm-$*

$(CHECKOV):
	hack/get-checkov.sh $(CHECKOV_VERSION) $(TOOLS)/checkov

$(README_GENERATOR):
	npm install --silent --no-audit --no-fund --prefix $(TOOLS) @bitnami/readme-generator-for-helm@$(README_GENERATOR_VERSION)

demo: setup ## Run the whole pipeline on this machine's CPU (digits dataset; the TAO 3 route, played by the CPU backend) and print a summary
	$(VENV)/bin/tao-kfp run-local --tao-version 3 --output .demo

##@ Development
compile: setup ## Recompile every route's package in files/pipelines/ from pipeline_src/
	$(VENV)/bin/tao-kfp compile

docs: tools ## Regenerate the README values table from the @param comments in values.yaml
	hack/gen-docs.sh

# helm lint with scenario 01 (the defaults plus an NGC key): the defaults alone fail on purpose.
lint: setup tools ## ruff, helm lint --strict (Helm 3 and 4), shellcheck
	$(VENV)/bin/ruff check pipeline_src tests hack
	$(VENV)/bin/ruff format --check pipeline_src tests hack
	@# Each ci/ scenario in the namespace it names: lint fails wherever an install would (templates/_validate.tpl).
	for values in ci/*-values.yaml; do \
	  namespace=$$(sed -n 's/^# helm-namespace: *//p' "$$values"); \
	  $(HELM3) lint --strict . -f "$$values" -n "$$namespace"; \
	  $(HELM4) lint --strict . -f "$$values" -n "$$namespace"; \
	done
	$(VENV)/bin/shellcheck hack/*.sh hack/kfp-backends/*.sh hack/kfp-server/*.sh hack/cluster/*.sh hack/lib/*.sh images/tao-step/bin/* images/tools/entrypoint.sh

lint-values: setup $(HELM4) ## Check values files before helm install: duplicate keys, the chart's install checks, tao-kfp's rules (VALUES="a.yaml b.yaml")
	@test -n "$(VALUES)" || { echo 'usage: make lint-values VALUES="my-values.yaml [more.yaml]"' >&2; exit 2; }
	$(VENV)/bin/tao-kfp lint-values --chart . --helm $(HELM4) $(VALUES)

check-generated: setup tools ## Fail when the compiled pipeline or the README values table is stale
	$(VENV)/bin/tao-kfp compile --check
	hack/gen-docs.sh --check

test: lint check-generated ## Everything CI runs: lint, generated-file checks, unit, chart, upload and local pipeline tests
	$(VENV)/bin/pytest

e2e: setup tools ## Build the images here (podman, Debian base) and run every chart pod and both pipelines in containers (TF1 on a TAO stand-in, PyTorch on NVIDIA's wheels)
	hack/e2e.sh

e2e-cluster: setup tools ## Build Kubernetes from source (cached) and run every ci/ scenario's helm lifecycle on it as a namespace admin
	hack/e2e-cluster.sh

kfp-backends: setup ## Run KFP's own API server, Argo compiler and driver (each backend in hack/kfp-backends/versions.txt) on the adapted packages; print the matrix
	hack/kfp-backends/run.sh

kfp-backends-controls: setup ## Negative controls: the harness must FAIL the pre-fix package (2.0.5, 2.5.0) and the unadapted one (2.0.5, 2.14.4), and pass today's
	hack/kfp-backends/controls.sh

e2e-kfp: setup tools ## Build KFP 2.0.5's own API server and controllers (Go modules), start them with MariaDB, SeaweedFS and a control plane, run tests/kfp_server and the chart's helm lifecycle against them (KFP_SOURCE_DIR=<2.17.0 tree>: 2.17.0)
	hack/kfp-server/e2e.sh

# NVIDIA's TAO wheels in Python 3.12 envs outside the repo (hack/tao-env.sh; keyed by tao-env/*.txt).
TAO_PYT_ENV = $(shell hack/tao-env.sh pyt)
TAO_DEPLOY_ENV = $(shell hack/tao-env.sh deploy)
tao-env: ## Build (once) the pinned Python 3.12 envs with NVIDIA's nvidia-tao-pytorch and nvidia-tao-deploy 7.3.0
	@echo "TAO_PYT_ENV=$(TAO_PYT_ENV)"
	@echo "TAO_DEPLOY_ENV=$(TAO_DEPLOY_ENV)"

demo-tao: setup tao-env ## Run the PyTorch route (tao.version 6) with NVIDIA's own TAO code on this CPU; tao-deploy stops at its first TensorRT call
	TAO_PYT_ENV=$(TAO_PYT_ENV) TAO_DEPLOY_ENV=$(TAO_DEPLOY_ENV) $(VENV)/bin/tao-kfp run-local --tao-version 6 --output .demo-tao

test-nvidia: setup tao-env ## Run NVIDIA's TAO PyTorch code on the CPU: every classification_pyt step, tao-deploy up to TensorRT
	TAO_KFP_REQUIRE_NVIDIA=1 $(VENV)/bin/pytest -m nvidia tests/nvidia

test-cluster: setup tools ## Smoke tests against the cluster in KUBECONFIG (see hack/kind-up.sh)
	$(VENV)/bin/pytest -m cluster tests/cluster

##@ Release
images: ## Build the step images of the default route (TAO 6.26.3 pyt + deploy) and tools with docker or podman (TAO 3/5: images/README.md)
	hack/build-images.sh build $(REGISTRY) $(VERSION)$(if $(IMAGES), $(IMAGES))

base-image: ## Build a Debian bookworm base with python3 from apt packages (no registry needed): PYTHON_IMAGE for make images
	hack/build-base-image.sh

push: ## Push the images: make push REGISTRY=registry.example.com/team
	hack/build-images.sh push $(REGISTRY) $(VERSION)$(if $(IMAGES), $(IMAGES))

package: tools ## Write dist/$(CHART_NAME)-$(VERSION).tgz (chart files and the precompiled pipeline only)
	mkdir -p dist
	$(HELM3) package . --destination dist

kind-up: tools ## Create a kind cluster with standalone KFP and install the chart
	hack/kind-up.sh

kind-down: ## Delete the kind cluster
	hack/kind-down.sh

clean-runs: ## Remove the outputs of make demo, demo-tao and run-local (.demo, .demo-tao, .local-runs); keeps .venv
	rm -rf .demo .demo-tao .local-runs

clean: clean-runs ## Remove .venv, .tools, dist and local run outputs
	rm -rf $(VENV) $(TOOLS) dist

.PHONY: help setup tools demo compile docs lint lint-values check-generated test kfp-backends kfp-backends-controls test-cluster images push package kind-up kind-down clean-runs clean e2e base-image e2e-kfp tao-env test-nvidia e2e-cluster demo-tao
