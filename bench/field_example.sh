#!/usr/bin/env bash
# A note-sized run of the field's Bayesian-LoRA methods on the real model: SmolLM2-135M-Instruct
# fine-tuned on 160 ARC-Easy training questions (64 validation), 3 epochs, seed 0, one run per
# training method (SWAG, BLoB, IVON at the benchmark's IVON rate 1.0); each evaluated on 200
# ARC-Easy test questions with S = 5 (TFB on the SWAG run's MAP adapter, σ searched on the 64
# validation questions). It shows the methods run end to end on a real LLM, not which is
# better: one seed and 200 questions are far too few for that (bench/calibration.py is).
#
#   bash bench/field_example.sh            # about 25 minutes on 2 CPU cores
#
# Writes runs/field-example/{swag,blob,ivon}/ and bench/results/field_example.txt (the tables).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/field-example}
SL=.venv/bin/swag-lora
RESULT=bench/results/field_example.txt
DATA=${SWAG_LORA_DATA:-../shared/data}  # the benchmark files (see ../shared/data/README.md)
COMMON=(--model_name_or_path smollm2-135m-instruct --task arc-easy --data_dir "$DATA" --train_limit 160
        --validation_limit 64 --num_train_epochs 3 --seed 0 --cloze_normalize tokens --disable_tqdm true)
train() {  # METHOD EXTRA...
  local method=$1; shift
  if [ ! -f "$OUT/$method/run_config.json" ]; then
    $SL train "${COMMON[@]}" --output_dir "$OUT/$method" --overwrite_output_dir true "$@"
  fi
}
train swag --swag_start_epoch 1
train blob --bayes_method blob
train ivon --bayes_method ivon --learning_rate 1.0 --warmup_steps 0
: > "$RESULT.tmp"
for spec in "swag:map temperature swag tfb" "blob:map blob blob-mean" "ivon:map ivon ivon-mean"; do
  run=${spec%%:*}; methods=${spec#*:}
  echo "## $run run: $methods" >> "$RESULT.tmp"
  # shellcheck disable=SC2086
  $SL evaluate "$OUT/$run" --methods $methods --tasks arc-easy:test:200 --n_samples 5 --no_progress \
    --data_dir "$DATA" \
    --output_dir "$OUT/$run/eval-example" | tee -a "$RESULT.tmp"
done
mv "$RESULT.tmp" "$RESULT"
