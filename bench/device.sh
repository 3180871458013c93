#!/usr/bin/env bash
# All GPU benchmarks in one go, on a bare GPU image (torch, numpy, OpenCV; no network):
#
#   bench/device.sh OUTDIR [--device cuda|cpu] [--quick]
#
# 1. the machine: nvidia-smi, torch / CUDA versions
# 2. tracking speed        bench/track_speed.py      -> OUTDIR/track.json
# 3. benchmark shards      bench/bench_data.py       (scratch folder, not OUTDIR)
# 4. training throughput   bench/train_throughput.py -> OUTDIR/train.json, OUTDIR/profile.txt
# 5. a short real stage-3 run, Ray-free (python -m jobs.train.standalone tc) on those
#    pair shards, on the GPU                         -> OUTDIR/tc-metrics.jsonl
# 6. everything gathered, naming the device          -> OUTDIR/benchmarks.json
#
# Each step has its own time limit, so one failure or hang does not lose the others; the
# limits add up to 470 s (under 8 minutes). The log of it all is OUTDIR/log.txt. Missing
# pure-Python packages (webdataset, braceexpand) are installed from .whl/
# (bench/fetch_wheels.sh) into the scratch folder. The run folder and the shards stay in the scratch folder: OUTDIR
# keeps a handful of files (the device tool brings back at most 8).
# --device cpu --quick: a dry run of the same steps on a CPU machine (small and short).
set -uo pipefail

usage() { echo "usage: bench/device.sh OUTDIR [--device cuda|cpu] [--quick]" >&2; exit 2; }
[ $# -ge 1 ] || usage
OUT=$1
shift
DEVICE=cuda
QUICK=""
while [ $# -gt 0 ]; do
  case $1 in
    --device) [ $# -ge 2 ] || usage; DEVICE=$2; shift 2 ;;
    --quick) QUICK=--quick; shift ;;
    *) usage ;;
  esac
done

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pul-device-XXXXXX")
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
exec > >(tee "$OUT/log.txt") 2>&1

STATUS=""
step() {  # step NAME SECONDS COMMAND...: run it under its own limit, record its exit status
  local name=$1 limit=$2 start=$SECONDS rc
  shift 2
  echo "== $name (limit ${limit} s): $*"
  timeout -k 10 "$limit" "$@"
  rc=$?
  echo "== $name: exit $rc after $((SECONDS - start)) s"
  STATUS="$STATUS$name=$rc,"
}

if ! "$PY" -c "import webdataset" 2>/dev/null; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$WORK/site" .whl/*.whl &&
      export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "webdataset is missing and .whl/ holds no wheels: run bench/fetch_wheels.sh first"
  fi
fi

# the standalone stage-3 run: full-width AlexNet, batch 64 on the GPU; a token run on a CPU
if [ "$DEVICE" = cuda ]; then
  GPU=true BATCH=64 STEPS=200 POOL=512 WIDTH=1.0 LOG=20 FRAMES=120
else
  GPU=false BATCH=8 STEPS=6 POOL=32 WIDTH=0.25 LOG=2 FRAMES=20
fi
if [ -n "$QUICK" ]; then
  FRAMES=20
  [ "$STEPS" -gt 40 ] && STEPS=40
fi

step gpu 10 nvidia-smi
step versions 10 "$PY" -c "import sys, torch, numpy, cv2; print(sys.version); print('torch', \
torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(), 'numpy', \
numpy.__version__, 'cv2', cv2.__version__)"
step track 70 "$PY" bench/track_speed.py --device "$DEVICE" --frames "$FRAMES" \
  --json "$OUT/track.json"
step data 60 "$PY" bench/bench_data.py --out "$WORK/data" $QUICK
step train 200 "$PY" bench/train_throughput.py --device "$DEVICE" --data-dir "$WORK/data" \
  --width "$WIDTH" --json "$OUT/train.json" --profile "$OUT/profile.txt" $QUICK
step tc_run 100 "$PY" -m jobs.train.standalone tc --data "$WORK/data/pairs" \
  --run-dir "$WORK/tc-run" train.use_gpu=$GPU train.steps=$STEPS train.batch_size=$BATCH \
  pool=$POOL gap_start=8 gap_end=8 model.width=$WIDTH train.log_every=$LOG \
  train.checkpoint_every=$STEPS
cp "$WORK/tc-run/metrics.jsonl" "$OUT/tc-metrics.jsonl" 2>/dev/null || echo "no tc-run metrics"
step report 20 "$PY" bench/device_report.py "$OUT" --status "$STATUS" --batch "$BATCH"
rm -rf "$WORK"
[[ ",$STATUS" =~ =[1-9] ]] && exit 1
exit 0
