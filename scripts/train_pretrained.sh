#!/usr/bin/env bash
# Retrain one packaged model pair from scratch (maintainers; docs/decisions.md, "Pretrained models in the package"):
#   scripts/train_pretrained.sh TASK     # TASK = ct | pet | pathology
# 1. prepares data/TASK with `ratmir prepare TASK` (default settings) unless it exists;
# 2. trains the RAT of configs/pretrained/TASK.yaml into runs/pretrained-TASK;
# 3. unless configs/pretrained/TASK_BASELINE.yaml exists, times the baseline (a 20- and an N-iteration probe,
#    so start-up cancels) and writes that config with the iteration count that fills the RAT's training time;
# 4. trains the baseline into runs/pretrained-TASK-BASELINE.
# Then: ratmir models package runs/pretrained-TASK --name TASK --data data/TASK --config configs/pretrained/TASK.yaml \
#         --baseline runs/pretrained-TASK-BASELINE --baseline-name TASK-BASELINE \
#         --baseline-config configs/pretrained/TASK_BASELINE.yaml --machine "..."
# Run it on an otherwise idle machine: the baseline's budget is the RAT's wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
task=${1:?usage: scripts/train_pretrained.sh ct|pet|pathology}
case $task in
  ct) base=redcnn; options="{features: 48}"; probe=200 ;;
  pet|pathology) base=dncnn; options="{features: 32, depth: 10}"; probe=500 ;;
  *) echo "Error: TASK must be ct, pet or pathology, got '$task'" >&2; exit 2 ;;
esac
PY=${PY:-.venv/bin/python}
R="$PY -m ratmir"
[ -f "data/$task/dataset.json" ] || $R prepare "$task" --out "data/$task"
$R train "configs/pretrained/$task.yaml" --out "runs/pretrained-$task" --no-progress
cfg="configs/pretrained/${task}_$base.yaml"
if [ ! -f "$cfg" ]; then
  rat_s=$($PY -c "from pathlib import Path; from ratmir.engine.packaging import validation_curve
print(int(validation_curve(Path('runs/pretrained-$task/metrics.jsonl'))[1]))")
  probe_cfg=$(mktemp --suffix=.yaml)
  write_cfg() {  # $1: iterations (and a comment), $2: file, $3: data root
    cat > "$2" <<YAML
# The same-engine baseline of the packaged $task model (\`ratmir models show $task-$base\`), trained for the
# wall time of configs/pretrained/$task.yaml on this machine (scripts/train_pretrained.sh measured it).
# Every optimiser, init, data and budget setting is written out here; nothing comes from another file.
#   ratmir prepare $task --out data/$task && ratmir train configs/pretrained/${task}_$base.yaml --out runs/pretrained-$task-$base
task: $task
name: $base
model:
  name: $base
  options: $options   # the demo's baseline size
data:
  root: $3
  patch_size: 96
  batch_size: 4
  augment: true
  val_split: val
  val_max_images: 4
loss: {name: focal_region, gamma: 1.0e-3, delta: 1.0, normalize: batch}
# the CNN baselines' short-budget recipe (benchmarks/recipes.py: no warm-up, the authors' betas)
optim: {lr: 1.0e-3, lr_min: 1.0e-6, betas: [0.5, 0.999], warmup: 0, weight_decay: 0.0, grad_clip: null}
train:
  iterations: $1
  seed: 0
  log_every: 50
  val_every: 250
  checkpoint_every: 250
  amp: none
  ema: null
YAML
  }
  write_cfg 20 "$probe_cfg" "$(pwd)/data/$task"
  a=$(date +%s); $R train "$probe_cfg" --out "$(mktemp -d)" --force --no-progress --set train.val_every=100000 >/dev/null
  b=$(date +%s); $R train "$probe_cfg" --out "$(mktemp -d)" --force --no-progress --set "train.iterations=$((probe + 20))" \
    --set train.val_every=100000 >/dev/null
  c=$(date +%s)
  its=$(( rat_s * probe / ( (c - b) - (b - a) > 0 ? (c - b) - (b - a) : 1 ) / 50 * 50 ))
  write_cfg "$its   # the RAT's $rat_s s on this machine at the baseline's measured s per iteration" "$cfg" \
    "../../data/$task"
  rm -f "$probe_cfg"
fi
$R train "$cfg" --out "runs/pretrained-$task-$base" --no-progress
