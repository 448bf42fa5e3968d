# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# `make test` and `make demo` set up .venv on first use (see
# tools/misc/setup_env.sh) and reuse it afterwards.
VENV    ?= .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.mmupv2-installed
DATA    := data/shapes
PYTEST_ARGS ?=

.PHONY: install test demo lint data clean-venv

$(STAMP): setup.py requirements/runtime.txt requirements/tests.txt \
          requirements/build.txt requirements/mmcv.txt tools/misc/setup_env.sh
	bash tools/misc/setup_env.sh $(VENV)
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PYTHON) -m pytest tests $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check mmupv2 tools tests configs demo

$(DATA)/meta.json: | $(STAMP)
	$(PYTHON) tools/misc/generate_shapes.py --out $(DATA)

data: $(DATA)/meta.json

demo: $(STAMP) $(DATA)/meta.json
	$(PYTHON) tools/misc/demo.py

clean-venv:
	rm -rf $(VENV)
