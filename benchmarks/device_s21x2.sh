#!/usr/bin/env bash
# Session 21's 2-GPU calls, nvidia-h100-x2, carry [.whl], one warm machine: `bash benchmarks/device_s21x2.sh a`,
# then `... b` (opposite order). Sessions 17-20: a steady shipped pair's median backward is 1.9-2.6 ms above one
# GPU's, where 1.9x allows about 2.4 ms in all; the all-reduce's bytes take 0.4 ms (session 12) and fewer NCCL
# channels gained nothing (session 19). Two untried levers on how NCCL's kernels share the SMs with the backward:
# - hp: TORCH_NCCL_HIGH_PRIORITY=1, NCCL's stream at high priority: a bucket's all-reduce is scheduled ahead of
#   the backward's queued blocks instead of behind them, so the last bucket's sum ends sooner after the backward.
#   Prediction: the median backward 0.5-1 ms shorter, the pair +1-2%.
# - bk: --ddp-option bucket_cap_mb=128, one bucket for all 102 MB of gradients: no all-reduce beside the backward
#   (nothing to share the SMs with), 0.4 ms after it. Prediction: -1 to +3%; session 12's one graph
#   (optimize_ddp=False, the all-reduces after the backward too) lost 5%, but before the bucket views.
set -u
source benchmarks/device_x2_lib.sh
t0=$(date +%s)
unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc XDG_CACHE_HOME=/tmp/xdg
nvidia-smi -L | tee -a $S; nproc | tee -a $S
python3 -c "import torch; print('torch', torch.__version__)" | tee -a $S
strings $(python3 -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib', 'libtorch_cuda.so'))") \
  | grep -m1 -x TORCH_NCCL_HIGH_PRIORITY | sed 's/^/knows /' | tee -a $S
compiled_runs
fresh=$([ -d /tmp/inet13k ] && echo 0 || echo 1)
x2_resnet50; val100; smi_query
[ $fresh = 1 ] && { LIMIT=85 run fill 512 python3 -m imagenet_trainer $TT/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null; leftovers; }
if [ "${1:-a}" = a ]; then
  one c1 95
  pair n1
  TORCH_NCCL_HIGH_PRIORITY=1 pair hp1
  pair bk1 --ddp-option bucket_cap_mb=128
else
  pair bk2 --ddp-option bucket_cap_mb=128
  TORCH_NCCL_HIGH_PRIORITY=1 pair hp2
  pair n2
  one c2 95
fi
echo "elapsed $(( $(date +%s) - t0 )) s" | tee -a $S
echo; cat $S
