#!/usr/bin/env bash
# The five-painting network's candidates, trained side by side on one CUDA GPU for the same
# wall time each: Johnson et al.'s width with bilinear upsampling, a total-variation term and the
# lattice term against the 4-px hatching, the same at half width, and the shipped width-8 layout
# with the lattice term (its speed, without its hatching). Each writes OUT/NAME.pt (its held-out
# loss curve inside) and OUT/NAME.json, its log. On a lent machine, training/device.sh runs this.
#
#   PHOTOS=photos/ PAINTINGS=paintings/ training/cuda.sh            # all candidates, 7 minutes each
#   MINUTES=30 OUT=runs/ training/cuda.sh w32_grid                     # one, longer
#
# PAINTINGS holds starry_night.jpg the_scream.jpg shipwreck.jpg composition_vii.jpg seated_nude.jpg.
# Continue any of them on a CPU with `impasto train ... --init-from OUT/NAME.pt` (training/README.md).
set -euo pipefail

PHOTOS=${PHOTOS:?PHOTOS: the folder of training photos}
PAINTINGS=${PAINTINGS:?PAINTINGS: the folder of the five paintings}
OUT=${OUT:-training/cuda}
MINUTES=${MINUTES:-7}
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-3}
IMPASTO=${IMPASTO:-impasto}

declare -A CANDIDATES=(
    [w32_grid]="--width 32 --upsample bilinear --tv-weight 3e6 --grid-weight 1e11"
    [w16_grid]="--width 16 --upsample bilinear --tv-weight 3e6 --grid-weight 1e11"
    [w8_grid]="--width 8 --blocks 5 --kernel 9 --grid-weight 1e11"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(w32_grid w16_grid w8_grid)
for name in "${names[@]}"; do
    [ -n "${CANDIDATES[$name]:-}" ] || { echo "cuda.sh: unknown candidate $name: choose from ${!CANDIDATES[*]}" >&2; exit 2; }
done

mkdir -p "$OUT"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
paintings=()
for p in starry_night the_scream shipwreck composition_vii seated_nude; do paintings+=("$PAINTINGS/$p.jpg"); done

# The shipped network's objective (content relu2_2; style relu1_1 ... relu4_1, β 100; paintings
# and crops at 256 px); batches of 16, as Dumoulin et al.'s, since a GPU runs them as fast as 4.
# Each process keeps two CPU threads: the GPU does the work, the cores decode photos.
pids=()
for name in "${names[@]}"; do
    # shellcheck disable=SC2086  # the candidate's options are split on purpose
    OMP_NUM_THREADS=2 $IMPASTO train "${paintings[@]}" --data "$PHOTOS" -o "$OUT/$name.pt" \
        --device "$DEVICE" --workers "$WORKERS" --minutes "$MINUTES" --iterations 1000000 \
        --batch-size 16 --crop-size 256 --style-size 256 --content-layers relu2_2 \
        --style-layers relu1_1 relu2_1 relu3_1 relu4_1 --style-weight 100 --learning-rate 1e-3 \
        --preview-every 250 --preview-dir "$scratch/$name" --checkpoint "$scratch/$name.ckpt" \
        --checkpoint-every 1000 -q --json ${CANDIDATES[$name]} > "$OUT/$name.json" 2>&1 &
    pids+=($!)
done
status=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { status=1; echo "cuda.sh: ${names[$i]} failed:" >&2; tail -n 5 "$OUT/${names[$i]}.json" >&2; }
    # The job file names this machine's paths; the model file records the settings, and a lent
    # machine sends back at most 8 files.
    rm -f "$OUT/${names[$i]}.job.json"
done
exit $status
