#!/usr/bin/env bash
# Issue #8 diagnosis: a plain loop (benchmarks/cifar_reference.py) against imagenet-trainer on CIFAR-10 JPEG.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1
mkdir -p /tmp/c && tar xzf .devdata/cifar10-jpeg.tar.gz -C /tmp/c
timeout 100 python3 benchmarks/cifar_reference.py /tmp/c/cifar10 --aug flip 2>&1 | tee $OUT/ref_flip.log | tail -3
timeout 100 python3 benchmarks/cifar_reference.py /tmp/c/cifar10 --aug pad 2>&1 | tee $OUT/ref_pad.log | tail -3
timeout 100 python3 benchmarks/cifar_reference.py /tmp/c/cifar10 --aug flip --fp32 2>&1 | tee $OUT/ref_flip32.log | tail -3
