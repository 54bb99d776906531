# Two commands set everything up on a fresh machine:
#   make demo   - install into .venv, write the sample dataset, train, evaluate, predict
#   make test   - install with the test extras and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_DATA := demo-data
DEMO_RUN  := demo-runs/resnet18-shapes

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

test: install
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/imagenet-trainer sample-data $(DEMO_DATA) --classes 10 --per-class 160 --val-per-class 40 --size 64
	rm -rf $(DEMO_RUN)
	$(BIN)/imagenet-trainer train --data $(DEMO_DATA) --arch resnet18 --epochs 8 --batch-size 64 \
	    --image-size 56 --crop-size 48 --train-crop seed --lr 0.1 --warmup-epochs 1 --print-freq 25 \
	    --small-stem off --save-interval 0 \
	    --output $(DEMO_RUN)
	$(BIN)/imagenet-trainer evaluate --model $(DEMO_RUN)/model_best.pt --data $(DEMO_DATA)
	$(BIN)/imagenet-trainer predict --model $(DEMO_RUN)/model_best.pt --topk 3 \
	    $$(ls $(DEMO_DATA)/val/red_circle/* | head -n 1)

clean:
	rm -rf $(VENV) $(DEMO_DATA) demo-runs
