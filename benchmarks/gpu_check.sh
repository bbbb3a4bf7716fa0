#!/usr/bin/env bash
# Every GPU check in one go, for a machine with a CUDA GPU and CuPy installed; no network needed.
#
#   1. make test-gpu: the tests with a GPU variant (pytest -k gpu), failing if the GPU cannot be used
#   2. each example that takes --device GPU, for a few batches, on made-up MNIST-format pictures
#      (latent_loss_demo.py and make_pictures.py have no --device: they are not run)
#   3. benchmarks/train_speed.py --device GPU --quick: netgraph against PyTorch CUDA when this Python
#      has it (else netgraph alone), on Fashion-MNIST when it is here, else on synthetic pictures
#
# then a summary of what passed, failed or ran out of time, with the seconds each took. Each check has a
# time limit, about 8 minutes in all; the logs go to $GPU_CHECK_OUT (default out/gpu_check).
#
#   benchmarks/gpu_check.sh                          # or: make gpu-check
#   PYTHON=/opt/venv/bin/python benchmarks/gpu_check.sh
#   GPU_CHECK_TESTS= GPU_CHECK_TEST_SECONDS=900 benchmarks/gpu_check.sh   # the whole suite, not only -k gpu
#
# Settings (environment): PYTHON (default python3), GPU_CHECK_OUT, GPU_CHECK_TESTS (pytest -k expression,
# default "gpu"; empty: every test), GPU_CHECK_TEST_SECONDS (210), GPU_CHECK_EXAMPLE_SECONDS (30 each),
# GPU_CHECK_BENCH_SECONDS (120). Exit status: 0 when every check passed, 1 when one did not, 2 when this
# machine has no usable GPU (nothing is run then).

set -u
cd "$(dirname "$0")/.." || exit 1
PYTHON=${PYTHON:-python3}
OUT=${GPU_CHECK_OUT:-out/gpu_check}
TESTS=${GPU_CHECK_TESTS-gpu}
TEST_SECONDS=${GPU_CHECK_TEST_SECONDS:-210}
EXAMPLE_SECONDS=${GPU_CHECK_EXAMPLE_SECONDS:-30}
BENCH_SECONDS=${GPU_CHECK_BENCH_SECONDS:-120}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"

PROBE='from netgraph.backend import BackendError, get_xp
try:
    get_xp("GPU")
except BackendError as error:
    raise SystemExit(str(error))'
if ! missing=$("$PYTHON" -c "$PROBE" 2>&1); then
    echo "gpu_check.sh: no usable GPU for $PYTHON: $missing" >&2
    exit 2
fi

DATA="$OUT/data"
"$PYTHON" - "$DATA" <<'EOF' || { echo "gpu_check.sh: could not write the made-up pictures to $DATA" >&2; exit 1; }
"""256 training and 64 test pictures in MNIST format, a bright square each, labels 0 to 9."""
import sys
from pathlib import Path

import numpy as np

from netgraph.datasets import write_idx

folder = Path(sys.argv[1])
folder.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
for kind, count in (("train", 256), ("t10k", 64)):
    images = np.zeros((count, 28, 28), np.uint8)
    for image in images:
        top, left = rng.integers(2, 14, size=2)
        image[top : top + 12, left : left + 12] = rng.integers(128, 256)
    write_idx(folder / f"{kind}-images-idx3-ubyte.gz", images)
    write_idx(folder / f"{kind}-labels-idx1-ubyte.gz", (np.arange(count) % 10).astype(np.uint8))
EOF

NAMES=()
RESULTS=()
SECONDS_TAKEN=()
FAILED=0

# check NAME LIMIT COMMAND...: runs COMMAND with a time limit, its output in $OUT/NAME.log
check() {
    local name=$1 limit=$2 start status verdict
    shift 2
    echo "== $name (at most ${limit} s): $*"
    start=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    status=$?
    case $status in
        0) verdict=PASS ;;
        124 | 137) verdict="TIMEOUT after ${limit} s" ;;
        *) verdict="FAIL (exit status $status)" ;;
    esac
    [ "$status" = 0 ] || FAILED=1
    NAMES+=("$name")
    RESULTS+=("$verdict")
    SECONDS_TAKEN+=("$(($(date +%s) - start))")
    echo "   $verdict; the last lines of $OUT/$name.log:"
    tail -n 5 "$OUT/$name.log" | sed 's/^/   | /'
}

if command -v make >/dev/null 2>&1; then
    check test-gpu "$TEST_SECONDS" env PYTEST_ADDOPTS="${TESTS:+-k $TESTS}" make test-gpu PYTHON="$PYTHON"
else  # what make test-gpu runs
    check test-gpu "$TEST_SECONDS" env NETGRAPH_REQUIRE_GPU=1 "$PYTHON" -m pytest -p no:cacheprovider ${TESTS:+-k "$TESTS"}
fi

EXAMPLE_OUT="$OUT/examples"
check mnist_vae "$EXAMPLE_SECONDS" "$PYTHON" examples/mnist_vae.py --device GPU --data "$DATA" \
    --iterations 20 --batch-size 32 --test-images 64 --out "$EXAMPLE_OUT/mnist_vae"
check augment_vae "$EXAMPLE_SECONDS" "$PYTHON" examples/augment_vae.py train --device GPU --data "$DATA" \
    --iterations 5 --batch-size 16 --train-images 64 --test-images 16 --out "$EXAMPLE_OUT/augment_vae"
check cake_vae "$EXAMPLE_SECONDS" "$PYTHON" examples/cake_vae.py --device GPU --data "$DATA" \
    --epochs 2 --batch-size 16 --train-images 64 --out "$EXAMPLE_OUT/cake_vae"
check faces_vae "$EXAMPLE_SECONDS" "$PYTHON" examples/faces_vae.py --device GPU --data "$DATA" \
    --iterations 5 --batch-size 16 --train-images 128 --out "$EXAMPLE_OUT/faces_vae"
check pegasus_vae "$EXAMPLE_SECONDS" "$PYTHON" examples/pegasus_vae.py --device GPU --data "$DATA" \
    --classes 3 5 --iterations 5 --batch-size 16 --train-images 128 --out "$EXAMPLE_OUT/pegasus_vae"

BENCH_DATA=()
"$PYTHON" -c "from netgraph.datasets import fashion_mnist; fashion_mnist()" >/dev/null 2>&1 \
    || BENCH_DATA=(--data synthetic)
check train_speed "$BENCH_SECONDS" "$PYTHON" benchmarks/train_speed.py --device GPU --quick ${BENCH_DATA[@]+"${BENCH_DATA[@]}"}

echo
echo "summary ($PYTHON; logs in $OUT):"
for i in "${!NAMES[@]}"; do
    printf '  %-12s %5s s  %s\n' "${NAMES[$i]}" "${SECONDS_TAKEN[$i]}" "${RESULTS[$i]}"
done
[ "$FAILED" = 0 ] && echo "every check passed" || echo "some checks did not pass: see their logs"
exit "$FAILED"
