# Two commands for users: `make demo` and `make test`. Both set up .venv first if needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: setup demo test samples lab clean-notebooks

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

demo: setup
	$(VENV)/bin/microemo-ref demo

test: setup
	$(PY) -m pytest -q

# Regenerate the committed sample set in data_samples/ (deterministic).
samples: setup
	$(VENV)/bin/microemo-ref samples --out data_samples

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

# Strip noisy metadata from notebooks before committing.
clean-notebooks: setup
	$(VENV)/bin/microemo-ref nbclean notebooks/*.ipynb
