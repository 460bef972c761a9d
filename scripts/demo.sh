#!/usr/bin/env bash
# Runs the whole LLM2LLM loop on the bundled tiny checkpoint: `llm2llm serve`
# plays the teacher on a free loopback port, `llm2llm run` does two
# iterations on the demo seed set, and `llm2llm report` prints the result.
# The checkpoint's weights are random, so expect near-zero accuracy and a
# teacher whose replies are rejected: the demo shows the pipeline, not gains.
#
# Usage: scripts/demo.sh [DB]   (default DB: runs/demo.db, replaced each time)
set -euo pipefail
cd "$(dirname "$0")/.."

db="${1:-runs/demo.db}"
rm -f "$db" "$db-wal" "$db-shm"

cargo build --release --locked
bin=target/release/llm2llm
model=tests/fixtures/tiny-llama/model

# The server prints its base URL on the first line of stdout once the model
# is loaded.
coproc SERVER { exec "$bin" serve --model "$model" --port 0 --model-name tiny-llama; }
trap 'kill "$SERVER_PID" 2>/dev/null || true' EXIT
read -r teacher_url <&"${SERVER[0]}"
echo "teacher: $teacher_url"

"$bin" run --config configs/demo/demo.toml \
    --seed configs/demo/seed.jsonl --test configs/demo/test.jsonl \
    --iters 2 --teacher-url "$teacher_url" --db "$db" --name demo
"$bin" report demo --db "$db" --chart runs/demo-accuracy.svg
