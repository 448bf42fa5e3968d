# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# `make test` and `make demo` set up .venv on first use (see
# tools/misc/setup_env.sh) and reuse it afterwards.
VENV    ?= .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.mmupv2-installed
DATA    := data/shapes
PYTEST_ARGS ?=

.PHONY: install test demo lint data clean-venv device-bundle device-rehearsal

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

# The GPU machine (docs/gpu.md): the offline bundle, and its whole run
# rehearsed here on the CPU in a Python 3.12 stand-in without a package
# index (first time: ~4 GiB for the stand-in and 20-60 min on 2 cores for
# the two prebuilt mmcv wheels; later: ~15 min).
device-bundle: $(STAMP)
	bash tools/misc/device_bundle.sh .device_bundle

device-rehearsal: $(STAMP)
	bash tools/misc/device_rehearsal.sh

clean-venv:
	rm -rf $(VENV)
