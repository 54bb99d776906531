#!/usr/bin/env bash
# Session 22's 2-GPU calls (nvidia-h100-x2, carry [.whl]), one warm machine: `bash benchmarks/device_s22x2.sh a`,
# then, on 2x H100 only (on H200 the pair waits for its workers), `... b`.
# a: what DDP costs on random batches, split (benchmarks/ddp_ceiling.py --comm-hook, compiled resnet50, 100 steps):
#    one GPU alone; the twin (two one-GPU processes at once, no DDP); the shipped DDP options with each bucket's hook
#    doing nothing (noop: DDP's own work, the ranks never meet), all-reducing one element (sync: the ranks meet at
#    every bucket, almost no bytes), and all-reducing the bucket (as shipped); the last three alternated, twice.
#    Sessions 9-21: the shipped ceiling is 93.7-96.3% of one GPU; the all-reduce alone takes 0.4 ms (session 12), one
#    bucket gains 0.5% (session 21), DDP over a group of one process costs 0.2 ms a step (session 18).
#    Prediction: twin >= 99%, noop about 99%, sync about 97%, shipped 95.5-96.3%: the ranks' meeting and the bytes
#    beside the backward each about half of what is lost.
# b (not run in session 22: no H100 pair came, and the device time ran out): train's pair (compiled resnet50, 13k
#    tree, --loader cpu, sessions 17-21's set-up) on 2x H100: one GPU, then the shipped pair (split) against
#    `--ddp-graph whole` (session 22's call c: on 2x H200 DDP's ceiling 97.9-98.1% whole against 93.5-97.0% split),
#    alternated. Prediction: whole +1-3% over the shipped pair, 1.88-1.92x; if the pair gains less than the ceiling
#    did, what holds it is beyond DDP (session 12: one graph lost 5% in train while the ceiling gained 0.6%, then
#    with the buffer broadcast and no bucket views).
# c (after a, on 2x H200: noop 97.3-97.6% of one GPU, sync 96.4-96.6%, shipped 95.0-95.4%, twin 99.8%, so DDP's own
#    work with the ranks apart costs more than half): is that work the split into one compiled graph per bucket
#    (DDPOptimizer)? Alternated twice: noop with one graph (--whole-graph); the shipped options with one graph (the
#    all-reduce after the backward, 0.4 ms), the same with bf16 gradients (0.2 ms), with DDP's all-reduces traced
#    into one compiled backward (--python-reducer: compiled autograd), and as shipped.
#    Prediction: noop with one graph 99.5% (the split is the cost); one graph 97%, with bf16 gradients 97.5%;
#    the python reducer 97-98% if it runs; shipped 95-95.5%.
# d (not run yet; after b, on 2x H100): the pair's host out of its steps. Sessions 17-20: a pair's runs are steady or
#    jittery, the host behind in 1-5% of the steps, and a late rank holds up both. With one graph (b), the forward
#    and the backward are one compiled graph each, which CUDA graphs can replay (`--compile-mode reduce-overhead`;
#    cut per bucket, batch norm's buffers are inputs the graphs skip: pytorch#139207). One GPU as shipped and with
#    the graphs, then the pair whole with the graphs, twice. Prediction: one GPU within 1% either way (ResNet-50 at
#    256 is not launch-bound); the pair with the graphs steady in both runs (host behind in under 1% of its steps),
#    1.90-1.95x against one GPU as shipped. It may not run at all (DDP's bucket views and CUDA graphs' memory pool
#    have not met in this project); a failure is the answer then.
# Session 24's plan (session 23 ran b, d and t on 2x H200 only; there `--loader auto` picked hybrid for the pair's
#    ranks, and with one graph the pair made 1.95x): one warm 2x H100 (or H200) machine,
#    `EXTRA="--loader auto" PAIRS="n1 wh1 n2" ... b`, then `EXTRA="--loader auto" PAIRS="wh2 hx1 hx2" ... b`, then `t`.
#    Prediction on H100: one GPU as shipped about 5,550 img/s (auto keeps the CPU loader for one GPU); the shipped pair
#    (auto, split) 1.82-1.86x, as with --loader cpu (the H100 pair did not wait for its workers, session 11); whole
#    1.88-1.93x (each step 96-97% of one GPU's, as on H200); hx1 and hx2 (the hybrid loader at a fixed split, after
#    the race fix) the same losses at step 10 and at the end.
# Session 24: the hybrid loader now warms nvJPEG and its crop kernel in a thread of its own while the workers fork
#    and decode the first batch, and the first-batch line says where that batch's time went. `hb*` runs `hx` with
#    the code in .base (the commit before, carried) to compare the first batch. Prediction: hx's first batch 0.7-1.5 s
#    sooner than hb's (session 23: hybrid pairs 10.2-11.9 s, CPU-loader pairs 7.3-9.9 s), the warm-up 0.5-1.5 s beside
#    workers that take about 1 s, and the first batch's device side under 0.3 s.
#    Result (call 2, 2x H200): the warm-up took 1.3-2.0 s beside workers that took 0.6-0.7 s, and the first batch's
#    device side still took 1.1-1.6 s; hx1 9.5 s against hb1 8.3 s. Replaced: the workers now decode the first batch
#    whole, so nvJPEG's first call falls on a later batch. `f` compares that with .base, three alternated rounds.
#    Prediction: the first batch's device side 0.2 s (as the CPU loader's), the pair's first batch 1-1.5 s sooner.
#    Result (call 3, 2x H200): first batch 8.2 and 8.9 s against 9.4-9.8 s (device side 0.7 s), but the start-up only
#    moved: the steps from 10 to 20 ran at 4,247-6,248 img/s against 13,093-13,410. Now a thread also decodes the
#    first batch's GPU share of files while the first step compiles (`STEPS=40 ... f`: the progress line's img/s at
#    step 40 counts from the first batch's end). Prediction: first batch as in call 3 (8-9 s), img/s at step 40
#    within 5% of .base's.
#    Result (call 4, 2x H200): first batch 7.9 and 8.0 s against 8.0-9.4 s, img/s at step 40 11,181-11,276 against
#    12,318-12,703 (-10%; the first round's extra CPU work), and runs at a fixed split no longer alike (final losses
#    15.6087-15.6095; .base 13.6210 each time): the share held at 1 went to whichever samples the workers reached.
#    Replaced by the first batch's items decoded on the CPU (chosen before the fork) and no warm-up thread.
#    `ROUNDS="1 2" STEPS=40 ... f` (a compile-filling run first). Prediction: first batch 8-8.5 s against 8.5-9.5 s,
#    img/s at step 40 within 3% of .base's, and the new runs' losses equal to each other.
#    Result (call 7, another 2x H200): first batch 9.6 / 9.8 s (workers 1.5-1.6 s, device side 0.6-0.7 s) against
#    10.1 / 8.3 s: not sooner in two rounds (prediction not met); img/s at step 40 12,198 / 12,329 against 12,163 /
#    11,598; losses 10.5944 twice (runs alike again). Next: three alternated rounds on one machine.
# Session 25's plan (all 7 of session 24's calls came up on 2x H200): on one warm 2x H100 (carry .whl and .base, the
#    code before 187039c, i.e. 754073a's src): `EXTRA="--loader auto" PAIRS="n1 wh1" ... b`, then
#    `EXTRA="--loader hybrid" PAIRS="n3 wh3" ... b`, then `t` (the whole GPU set has not run on 187039c), then
#    `ROUNDS="1 2 3" STEPS=40 ... f`. Prediction on H100: one GPU about 5,550 img/s; auto's pair 1.82-1.86x (whichever
#    loader its probe picks); the hybrid loader whole 1.88-1.93x, cut 1.82-1.86x; first batch (f) no later than .base's.
# Session 25: the probe's model rate is now its median pass's (CUDA events), not the timed passes' mean. Call A:
#    `EXTRA="--loader auto" PAIRS="n1 wh1 pw1" ... b; EXTRA="--loader hybrid" PAIRS="n3 wh3" ... b` (pw: a short
#    pair whose probe runs in a warm launch). Prediction: the cold launch's probe (fill) measures the model at 90% or
#    more of what pw's probe measures; if it still measures about 73%, the cold launch's passes are slow throughout
#    the window, not stalled once.
#    Result (call A, 2x H200): the cold probe measured 4,507 img/s, and pw1's (warm launch) 2,887 in 20.1 s (so
#    it picked the CPU loader) against 6,000 a rank in training. Cause found: each rank's probe stepped its DDP
#    model until its own workers' timing ended, so the ranks ran different numbers of passes, and the one that
#    stopped first paired its next collective with the other's all-reduce of gradients. Fixed: the ranks agree
#    each pass (any_rank). Call C: `EXTRA="--loader auto" PAIRS="pw1 pw2 n1" ... b`. Prediction: every probe
#    (cold fill, pw1, pw2) measures the model at 5,000 img/s or more a rank (H200; 4,500 or more on H100), within
#    10% of each other, and picks hybrid (workers about 3,300 a rank).
#    Result (call C, 2x H200): the probes agree now (cold 4,461, pw1 4,281, pw2 4,715 img/s) but at 72-79% of the
#    5,900 a rank the pair trains at (prediction not met), and pw1's workers (4,944) then looked fast enough for
#    the CPU loader. Each pass waited for the all-reduce of the flag (the host synced every pass, so the GPU
#    idled while DDP's host work launched the next). Now the ranks agree a pass late, from the device, and the
#    host waits only for the pass before (AnyRankLate). Call D: `... p` (the NCCL test, then pc, pw1, pw2).
#    Prediction: the pair's probes measure 5,300 img/s or more a rank (90% of training) and pick hybrid.
#    Result (call D, 2x H200): pc 4,930, pw1 4,217, pw2 4,644 img/s (workers 5,112, 5,862, 4,486): the per-pass
#    sync was not what kept the model's rate low (not met). The NCCL test passed.
# Session 26's plan: on an H100 pair (the issue's card; 23 of 23 calls since session 21 came up H200), first the
#    figure: `EXTRA="--loader auto" PAIRS="n1 wh1" ... b`, then `EXTRA="--loader hybrid" PAIRS="n3 wh3" ... b`, then
#    `t`. Prediction (H100): one GPU about 5,550 img/s; auto's pair 1.82-1.86x cut; hybrid whole 1.88-1.93x. Then
#    `... q` (on any pair): the probe alone against beside its workers, 32- against 128-image worker batches.
#    Prediction: alone 90-95% of what a rank trains at; beside with 32 about 75% (as in session 25), with 128 85% or
#    more (the rank's thread that receives the workers' batches holds the GIL a quarter as often).
# Session 26: call 1 (b with auto, then hybrid; 2x H200 again): the cold probe measured the model at 4,049 img/s a
#    rank and the workers at 4,448, picked the CPU loader, and the pair trained 8,883 img/s (1.40x one GPU's 6,355);
#    --loader hybrid split 10,458-10,581, whole 11,674-11,837 (1.84-1.86x). Call 2 (q): alone 6,284-6,595, beside
#    5,256-5,464 in round 1 and 6,623-6,681 in round 2, with 32- and 128-image batches alike (the batch size is
#    not it). Cause found: the probe's workers ran at full priority on every core, where training's are niced and
#    kept off the ranks' cores; now they run as training's do. And --ddp-graph auto (the new default) takes one
#    graph where the processes all-reduce at 100 GB/s or more. `... s`: the shipped defaults, a fresh cache
#    folder, in a cold launch (sfill), then one GPU, the pair twice, a warm probe (spw) and probe_pair (sq).
#    Prediction: auto picks whole (NVLink, about 250 GB/s); every probe measures the model at 90% or more of the
#    pair's per-rank training rate and picks hybrid; the pair 1.84x or more of one GPU on H200 (1.88-1.93x on H100);
#    sq's beside within 10% of its alone.
#    Result (call 3, 2x H100 at last): auto 217-241 GB/s, whole in every launch; the probes 4,753 (cold), 5,020 and
#    5,617 img/s a rank, 91-107% of training, hybrid in 3 of 3 (met); one GPU (auto: hybrid at 84%) 5,521 / 5,537,
#    the pair 10,439-10,466: 1.886-1.896x, short of 1.9x by 0.2-0.7% (each rank's backward 2.2 ms longer than one
#    GPU's, 0.45 ms of it the all-reduce). Call 4: all GPU tests, 28 passed.
# Session 27's plan, on a 2x H100 (carry .whl): is the rest the pair's larger GPU share of the decoding (66% on the
#    CPU against one GPU's 84%)? `EXTRA="--loader auto" PAIRS="n1 hs1 n2 hs2" ... b` (n: as shipped, which now
#    means --ddp-graph auto; hs: the hybrid loader at a fixed --cpu-share SHARE, default 0.84, one GPU's), then
#    `EXTRA="--loader cpu" PAIRS="n3" ... b` (the CPU loader, one graph). Prediction: hs within 1% of n if the
#    controller already settles near what the workers can carry (then the gap is elsewhere), or +1-2% if not;
#    the CPU loader's pair waits for its workers (H100: about 9,500-10,000).
# Session 27: step_events.py now prints each rank's split windows ([split]), so a run shows where its controller
#    took the share; b skips fillw with NOFILLW (auto already takes one graph on NVLink) and runs one GPU twice with
#    C2 (the second with its probe cached: the one-GPU first batch). Call 1 (2x H100 if it comes): `EXTRA="--loader
#    auto" NOFILLW=1 C2=1 PAIR_LIMIT=75 PAIRS="n1 hs1 n2 hs2" ... b`. Prediction: n 1.88-1.90x with its controllers
#    between shares 0.56 and 0.76; hs (0.84) 1.90-1.93x if the extra GPU decoding is the rest and 14 workers carry
#    84% (about 4,400 img/s a rank; the warm probe measured 4,486), else lower with training waiting for batches;
#    c2's first batch 7-9 s (c1's 12.0 s less the 4.7 s probe).
#    Result (call 1, 2x H100): one GPU's probe picked the CPU loader (workers 6,701, model 5,690): c1 5,573 / 5,571,
#    c2 5,587 / 5,584, step 45.7-45.9 ms; c2's first batch 6.6 s (met). The pair's cold probe picked hybrid at 100%
#    (rank 0: workers 5,611, model 4,454), and its controllers stayed at 0.95-1.0: n1 10,587 / 10,621, n2 10,565 /
#    10,609 (1.90x: 1.891-1.906 against c1 and c2), hs1 10,581 / 10,610, hs2 10,850 / 10,852 (1.94x). So the
#    GPU's share of the decoding is not the rest (n decoded 0-5% on the GPU); the pair's step is 48.2-48.3 ms (hs2:
#    47.2) against 45.8. Left on the pair's GPU and not on one GPU's: the resize of every region (hybrid, ~1 ms a
#    batch of 256), where one GPU's CPU loader hands over finished crops. Call 2: `EXTRA="--loader cpu" NOFILLW=1
#    C2=1 PAIR_LIMIT=75 SHARE=1.0 PAIRS="n3 hs3 n4" ... b` (fill and one GPU again on the warm compile cache).
#    Prediction: if 14 workers a rank carry 5,300 img/s of finished crops, the CPU-loader pair 10,850-10,950
#    (1.94-1.96x); if not, it waits for them (host period over the step) at 10,000-10,400; hs3 (hybrid at 1.0) as n1.
#    Result (call 2, another 2x H100): c1 5,596 / 5,595, c2 5,581 / 5,582; n3 10,676 / 10,673, n4 10,673 / 10,674
#    (CPU loader: 1.91x), hs3 10,678 / 10,676 (1.91x): the workers kept up, and the GPU's resize cost nothing
#    measurable (prediction not met: the pair's step is 47.9 ms with either, against 45.8). Call 3 (the same
#    machine, the shipped defaults, a fresh probe): `EXTRA="--loader auto" NOFILLW=1 C2=1 PAIR_LIMIT=75 PAIRS="n5 n6"`:
#    c1 5,574 (probe: cpu), c2 5,582 (first batch 5.8 s); n5 10,617 / 10,616 (1.90x), n6 10,731 / 10,669
#    (1.91-1.92x; hybrid from 94%, the controllers at 0.79-0.99). Call 4 (any 2x H100): the shipped defaults once
#    more, one GPU between the pairs: `... PAIRS="n7 c3 n8"`. Prediction: 1.89-1.92x against the mean of c1-c3.
#    Result (call 4, machine B still warm): c1-c3 5,580-5,603; n7 10,690 / 10,705 (1.91x), n8 10,617 / 10,621
#    (1.90x). Met. The shipped pairs of the session: 1.893-1.924x, 1.905x on average (six pairs, two machines).
#    Call 5 (nvidia-h100-x4, lent for the first time; `... x4`): one GPU 5,567 img/s, 4 GPUs 19,294 over batches
#    180-600 (3.47x) and 20,703 over the last 120 (3.70x), still rising; the ranks waited for data 6.4% of the first
#    180 steps. Their cold probe measured the model at 4,287 img/s a rank (it trained at about 5,200) and started
#    the workers at 100%; the controller moves 0.05 every 113 batches.
# Session 28's plan (issue #5 on nvidia-h100-x4, if lent): `x4` again, but warm (a launch that fills the compile cache
#    first), 1,200 steps, each run under step_events.py (the split windows: where the four controllers settle), then
#    the 4 GPUs with `--loader hybrid --cpu-share 0.85`. Prediction: warm and longer, 3.75-3.85x; a fixed 0.85 as
#    good as the controller's end. If the cold launch's low model rate (multi-rank cold probes: 4,287-4,753 against
#    5,000-5,600 warm) sets a start share that later launches read from the cache, that is a defect to fix (re-probe
#    once the compile cache is warm, or cache only a warm probe).
set -u
source benchmarks/device_x2_lib.sh
t0=$(date +%s)
unset PYTHONDONTWRITEBYTECODE; export PYTHONPYCACHEPREFIX=/tmp/pyc XDG_CACHE_HOME=/tmp/xdg
nvidia-smi -L | tee -a $S; nproc | tee -a $S
SHIP="--bucket-view --no-broadcast-buffers --ddp-option static_graph=True"
if [ "${1:-a}" = a ]; then
  ( make_tree > /dev/null 2>&1 ) &  # for call b, written while the first (cold) compile runs
  tree=$!
  s=$(date +%s); CUDA_VISIBLE_DEVICES=0 timeout 120 python3 benchmarks/ddp_ceiling.py --arch resnet50 --compile --steps 100 > /tmp/one.log 2>&1
  echo "== one (cold compile, the tree written beside) rc=$? $(( $(date +%s) - s )) s" | tee -a $S; grep -o '"rank".*' /tmp/one.log | cut -c1-330 | tee -a $S
  wait $tree
  s=$(date +%s); CUDA_VISIBLE_DEVICES=0 timeout 90 python3 benchmarks/ddp_ceiling.py --arch resnet50 --compile --steps 100 > /tmp/one2.log 2>&1
  echo "== one again rc=$? $(( $(date +%s) - s )) s" | tee -a $S; grep -o '"rank".*' /tmp/one2.log | cut -c1-330 | tee -a $S
  s=$(date +%s)
  for g in 0 1; do CUDA_VISIBLE_DEVICES=$g timeout 90 python3 benchmarks/ddp_ceiling.py --arch resnet50 --compile --steps 100 > /tmp/twin$g.log 2>&1 & done
  wait
  echo "== twin (GPU 0 and GPU 1 alone, at once) $(( $(date +%s) - s )) s" | tee -a $S
  for g in 0 1; do grep -o '"rank".*' /tmp/twin$g.log | cut -c1-330 | sed "s/^/gpu $g: /" | tee -a $S; done
  for r in 1 2; do
    LIMIT=100 ddp_ceiling2 noop$r $SHIP --comm-hook noop > /dev/null
    LIMIT=100 ddp_ceiling2 sync$r $SHIP --comm-hook sync > /dev/null
    LIMIT=100 ddp_ceiling2 ship$r $SHIP > /dev/null
  done
elif [ "$1" = c ]; then
  s=$(date +%s); CUDA_VISIBLE_DEVICES=0 timeout 120 python3 benchmarks/ddp_ceiling.py --arch resnet50 --compile --steps 100 > /tmp/one.log 2>&1
  echo "== one rc=$? $(( $(date +%s) - s )) s" | tee -a $S; grep -o '"rank".*' /tmp/one.log | cut -c1-330 | tee -a $S
  for r in 1 2; do
    LIMIT=110 ddp_ceiling2 noopwhole$r $SHIP --comm-hook noop --whole-graph > /dev/null
    LIMIT=110 ddp_ceiling2 whole$r $SHIP --whole-graph > /dev/null
    LIMIT=110 ddp_ceiling2 wholebf16$r $SHIP --whole-graph --grads bf16 > /dev/null
    LIMIT=150 ddp_ceiling2 pyreducer$r $SHIP --python-reducer > /dev/null
    LIMIT=110 ddp_ceiling2 ship$r $SHIP > /dev/null
  done
elif [ "$1" = d ]; then
  compiled_runs
  x2_resnet50; val100; smi_query
  RO="--compile-mode reduce-overhead"
  LIMIT=120 run fillro 512 python3 -m imagenet_trainer $TT/fillro $C $RO --ddp-graph whole --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null; leftovers
  grep -iE "error|skipping cudagraphs" /tmp/fillro.log | head -5 | tee -a $S
  one c1 95
  C="$C $RO" one c1ro 120
  C="$C $RO --ddp-graph whole" pair wro1
  C="$C $RO --ddp-graph whole" pair wro2
elif [ "$1" = f ]; then  # session 24: the first batch, this code against .base's (carry it), hybrid pairs alternated;
  # short runs (the first batch comes before the first step's compile, so the compile cache does not matter to it)
  compiled_runs; x2_resnet50; val100
  [ -n "${ROUNDS:-}" ] && PYTHONPATH=$PWD/.base/src:/tmp/site LIMIT=120 run fwarm 512 python3 -m imagenet_trainer \
    $TT/fwarm $C --loader hybrid --cpu-share 0.75 --ddp-graph whole --batch-size 512 --ngpu 2 --epoch-size 2 > /dev/null
  for r in ${ROUNDS:-1 2 3}; do
    for v in new base; do
      P=$PWD/src; [ $v = base ] && P=$PWD/.base/src
      PYTHONPATH=$P:/tmp/site LIMIT=120 run f$v$r 512 python3 -m imagenet_trainer $TT/f$v$r $C --loader hybrid \
        --cpu-share 0.75 --ddp-graph whole --batch-size 512 --ngpu 2 --epoch-size ${STEPS:-20} > /dev/null
    done
  done
  for f in /tmp/f{new,base}[123].log; do [ -f $f ] || continue; echo "$f: $(grep -h "^first training" $f) | $(grep -h "^train 1 \[ *${STEPS:-20}/" $f | grep -o '[0-9,]* img/s')" | tee -a $S; done
elif [ "$1" = p ]; then  # session 25: the pair's probe once its passes agree a pass late (AnyRankLate): its NCCL
  # test beside the tree, then three short --loader auto pairs each with a fresh cache folder (probing): pc in the
  # launch that compiles cold, pw1 and pw2 in warm ones
  ( make_tree > /dev/null 2>&1 ) &
  tree=$!; s=$(date +%s)
  timeout 90 python3 -m pytest -q -m gpu tests/engine/test_distributed_gpu.py -k probe -p no:cacheprovider > /tmp/pt.txt 2>&1
  pt="probe's gpu test rc=$? in $(( $(date +%s) - s )) s: $(tail -1 /tmp/pt.txt)"
  wait $tree; compiled_runs; x2_resnet50; val100; echo "$pt" | tee -a $S
  for p in pc pw1 pw2; do
    LIMIT=130 run $p 512 python3 -m imagenet_trainer $TT/$p $C --loader auto --cache-dir /tmp/itc_$p --batch-size 512 \
      --ngpu 2 --epoch-size 10 > /dev/null
  done
elif [ "$1" = q ]; then  # session 26: what the pair's probe measures alone and beside its workers' timing
  # (benchmarks/probe_pair.py), with the shipped 32-image worker batches and with 128; a fresh cache folder each,
  # after one launch that fills the compile cache (its probe as shipped)
  compiled_runs; x2_resnet50; val100
  LIMIT=130 run qfill 512 python3 -m imagenet_trainer $TT/qfill $C --loader auto --cache-dir /tmp/itc_qfill \
    --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null
  for r in 1 2; do
    for b in 32 128; do
      LIMIT=90 run q$b$r 512 python3 benchmarks/probe_pair.py --batch $b -- $TT/q$b$r $C --loader auto \
        --cache-dir /tmp/itc_q$b$r --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null
      grep -h "^\[probe\]" /tmp/q$b$r.log | tee -a $S
    done
  done
elif [ "$1" = s ]; then  # session 26: the shipped defaults (--loader auto, --ddp-graph auto), one cache folder
  compiled_runs; x2_resnet50; val100; smi_query
  C="$C --loader auto --cache-dir /tmp/itc_s"
  LIMIT=110 run sfill 512 python3 -m imagenet_trainer $TT/sfill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null
  grep -h "^DDP graph auto" /tmp/sfill.log | tee -a $S; leftovers
  one s1 95
  for p in sp1 sp2; do pair $p; grep -h "^DDP graph auto\|^first training" /tmp/$p.log | tee -a $S; done
  LIMIT=90 run spw 512 python3 -m imagenet_trainer $TT/spw ${C/itc_s/itc_spw} --batch-size 512 --ngpu 2 \
    --epoch-size 10 > /dev/null
  LIMIT=90 run sq 512 python3 benchmarks/probe_pair.py -- $TT/sq ${C/itc_s/itc_sq} --batch-size 512 --ngpu 2 \
    --epoch-size 10 > /dev/null
  grep -h "^\[probe\]" /tmp/sq.log | tee -a $S
elif [ "$1" = x4 ]; then  # session 27, issue #5 (nvidia-h100-x4 now lent; 300 s of device time left): one GPU, then
  # 4 GPUs, each a cold launch with the shipped defaults (--loader auto probes, --ddp-graph auto); rates over batches
  # 180-600 leave the compile out
  make_tree > /dev/null; val100; compiled_runs; C="$C --loader auto"
  CUDA_VISIBLE_DEVICES=0 LIMIT=100 run g1 256 python3 -m imagenet_trainer $TT/g1 $C --batch-size 256 > /dev/null
  LIMIT=140 run g4 1024 python3 -m imagenet_trainer $TT/g4 $C --batch-size 1024 --ngpu 4 > /dev/null
  grep -h "^DDP graph auto" /tmp/g4.log | tee -a $S
elif [ "$1" = t ]; then  # the GPU-marked tests, all of them (no -x)
  s=$(date +%s); timeout ${LIMIT:-300} python3 -m pytest -q -m gpu tests -p no:cacheprovider > $OUT/gpu_tests.txt 2>&1
  echo "gpu tests rc=$? in $(( $(date +%s) - s )) s: $(tail -1 $OUT/gpu_tests.txt)" | tee -a $S
else  # b; PAIRS: the pairs to run, in order (n*: split, wh*: whole, hx*: whole, hybrid at a fixed 0.75); a warm machine skips the tree, fills and c1;
  # EXTRA: train options added to every run (session 23: EXTRA="--loader auto", the shipped loader, which picks
  # hybrid for each rank of a pair on 2x H200, where --loader cpu left the pair waiting for its workers)
  compiled_runs
  C="$C ${EXTRA:-}"
  if [ ! -d /tmp/runs/fillw ]; then
    x2_resnet50; val100; smi_query
    LIMIT=100 run fill 512 python3 -m imagenet_trainer $TT/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null; leftovers
    [ -z "${NOFILLW:-}" ] && { LIMIT=100 run fillw 512 python3 -m imagenet_trainer $TT/fillw $C --batch-size 512 --ngpu 2 --epoch-size 10 --ddp-graph whole > /dev/null; leftovers; }
    one c1 95
    [ -n "${C2:-}" ] && one c2 95  # session 27: one GPU again, its probe now cached (its first batch)
  else
    smi_query
  fi
  for p in ${PAIRS:-n1 wh1 wh2 n2}; do
    case $p in
      n*) pair $p ;;
      wh*) C="$C --ddp-graph whole" pair $p ;;
      hx*) C="$C --ddp-graph whole --loader hybrid --cpu-share 0.75" pair $p ;;  # a fixed split: two runs, same losses
      hs*) C="$C --loader hybrid --cpu-share ${SHARE:-0.84}" pair $p ;;  # session 27: the hybrid loader at a fixed share
      c*) one $p 95; continue ;;  # session 27: one GPU between the pairs
      pw*) LIMIT=100 run $p 512 python3 -m imagenet_trainer $TT/$p $C --cache-dir /tmp/itc_$p --batch-size 512 --ngpu 2 \
        --epoch-size 10 > /dev/null; continue ;;  # a probe in a warm launch (a fresh cache folder; session 25)
      hb*) PYTHONPATH=$PWD/.base/src:/tmp/site C="$C --ddp-graph whole --loader hybrid --cpu-share 0.75" pair $p ;;  # hx, the code in .base (carry it)
    esac
    grep -h "^train 1 \[ 10/\|^epoch" /tmp/$p.log | cut -c1-60 | tee -a $S
    grep -h "^first training" /tmp/$p.log | tee -a $S
  done
fi
echo "elapsed $(( $(date +%s) - t0 )) s" | tee -a $S
echo; cat $S
