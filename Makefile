# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test install ingest bench bench-load bench-guardrails bench-retrieval bench-models eval eval-record lock smoke clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "tactful needs Python 3.11 ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Re-install only when the lock or the package metadata change. pip keeps the
# built llama-cpp-python wheel in its cache, so only the first install compiles.
$(STAMP): requirements.lock pyproject.toml | $(PY)
	$(PY) -m pip install --require-hashes -r requirements.lock
	$(PY) -m pip install --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

ingest: install
	$(VENV)/bin/tactful ingest knowledge/brands/acme --brand acme

run: install ingest
	TACTFUL_AUTH=$${TACTFUL_AUTH:-open} TACTFUL_LOG_FORMAT=$${TACTFUL_LOG_FORMAT:-text} $(VENV)/bin/tactful serve

test: install
	$(PY) -m pytest -q

smoke: install
	$(PY) -m pytest -q -m smoke

bench: install
	$(PY) benchmarks/suggest_overhead.py --latency 1.0 --workers 1
	$(PY) benchmarks/suggest_overhead.py --latency 1.0 --workers 2

# 256 concurrent clients for 60 s against 1, 2 and 4 uvicorn workers, stub LLM at 10 s (~6 min);
# throughput, p50/p95/p99, errors, peak RSS and CPU into benchmarks/results/load.json.
bench-load: install
	$(PY) benchmarks/load.py --workers 1,2,4

# Guardrails per draft next to alex (npm, installed into a temp dir), with both tools' F1 (~1 min).
bench-guardrails: install
	$(PY) benchmarks/guardrails.py

# Knowledge store queries at 1k/10k/100k chunks next to brute-force numpy (100k takes ~15 min).
bench-retrieval: install
	$(PY) benchmarks/retrieval.py

# Precision/recall of the guardrails (tuned corpus and blind held-out set), retrieval hit@k, and the
# 160 eval cases (golden and social) through the whole pipeline, the embedded model's responses
# replayed from evals/recordings/ (no LLM needed), with the gates of evals/gates.yaml.
eval: install ingest
	$(PY) -m evals.guardrails_eval
	$(PY) -m evals.guardrails_eval --heldout
	$(PY) -m evals.retrieval_eval
	$(VENV)/bin/tactful eval run --llm replay --model local --out data/evals/cases

# Record what the replay needs: runs the cases on the embedded model, calling it only for requests
# not yet in evals/recordings/ (all 160 from scratch: 23 min 52 s on 2 cores, 296 calls, measured 2026-11-24).
eval-record: install ingest
	$(VENV)/bin/tactful eval run --llm auto --model local --out data/evals/cases

# The two embedded models on the same messages through the real pipeline (~4 min).
bench-models: install ingest
	$(PY) benchmarks/local_models.py

# Regenerate the pinned, hashed lock from pyproject.toml (needs network to the registry).
lock:
	$(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra test --generate-hashes \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements.lock

clean:
	rm -rf $(VENV) data .pytest_cache
