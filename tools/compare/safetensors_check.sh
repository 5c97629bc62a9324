#!/usr/bin/env bash
# Interoperability with Python's `safetensors` (PyPI), run by hand — not part of the suite,
# which needs only Debian's packages.
#
#   tools/compare/safetensors_check.sh        (from the repository root or anywhere)
#
# 1. adacc trains a small model for 2 steps and writes DIR/model.safetensors.
# 2. Python's safetensors (numpy backend) opens that file: the metadata must say
#    format=pt, every tensor is F32 with Hugging Face GPT-2's name and shape
#    (Conv1D weights (in, out), wte (V, C)), and every value is finite.
# 3. Python writes the same tensors back under Hugging Face's own names (no
#    `transformer.` prefix, no adacc metadata), as a Hugging Face checkpoint is laid out;
#    adacc starts from that file with --init and must report the same initial loss as
#    when it starts from its own file.
#
# Needs the release build (build/release/adacc; not built here) and network access to
# PyPI once: a venv with safetensors and numpy is made in build/pyvenv.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ADACC="$ROOT/build/release/adacc"
VENV="$ROOT/build/pyvenv"
[[ -x "$ADACC" ]] || { echo "missing $ADACC: build the release preset first" >&2; exit 1; }
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import safetensors, numpy' 2>/dev/null; then
  echo "making $VENV (safetensors, numpy from PyPI)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q safetensors numpy
fi
PY="$VENV/bin/python"

TMP=$(mktemp -d "/tmp/adacc-safetensors-check.$$.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
MODEL=L=2,C=128,H=2,V=256,T=32  # H = C/64, as adacc infers it from a file without its metadata
head -c 200000 /dev/urandom | base64 >"$TMP/corpus.txt"
export OMP_NUM_THREADS=2

"$ADACC" train --data "$TMP/corpus.txt" --model "$MODEL" --batch 2 --seq 32 --steps 2 \
  --val-every 0 --out "$TMP/run" >"$TMP/train.log"

"$PY" - "$TMP/run/model.safetensors" "$TMP/hf.safetensors" <<'EOF'
import sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

src, dst = sys.argv[1], sys.argv[2]
L, C, V, T = 2, 128, 256, 32
want = {"transformer.wte.weight": (V, C), "transformer.wpe.weight": (T, C),
        "transformer.ln_f.weight": (C,), "transformer.ln_f.bias": (C,)}
for i in range(L):
    p = f"transformer.h.{i}."
    want.update({p + "ln_1.weight": (C,), p + "ln_1.bias": (C,),
                 p + "attn.c_attn.weight": (C, 3 * C), p + "attn.c_attn.bias": (3 * C,),
                 p + "attn.c_proj.weight": (C, C), p + "attn.c_proj.bias": (C,),
                 p + "ln_2.weight": (C,), p + "ln_2.bias": (C,),
                 p + "mlp.c_fc.weight": (C, 4 * C), p + "mlp.c_fc.bias": (4 * C,),
                 p + "mlp.c_proj.weight": (4 * C, C), p + "mlp.c_proj.bias": (C,)})
tensors = {}
with safe_open(src, framework="np") as f:
    meta = f.metadata() or {}
    assert meta.get("format") == "pt", f"metadata format is {meta.get('format')!r}, not 'pt'"
    names = set(f.keys())
    assert names == set(want), f"names differ: missing {sorted(set(want) - names)}, extra {sorted(names - set(want))}"
    for name in sorted(names):
        t = f.get_tensor(name)
        assert t.dtype == np.float32, f"{name}: dtype {t.dtype}"
        assert t.shape == want[name], f"{name}: shape {t.shape}, want {want[name]}"
        assert np.isfinite(t).all(), f"{name}: non-finite values"
        tensors[name[len("transformer."):]] = t
save_file(tensors, dst)  # Hugging Face's own names, no metadata
print(f"python safetensors: {len(names)} tensors, names, shapes, dtype F32, format=pt: ok")
EOF

loss_of() {  # first step's loss when training starts from $1
  "$ADACC" train --data "$TMP/corpus.txt" --init "$1" --batch 2 --seq 32 --steps 1 \
    --val-every 0 --out "$TMP/from-$2" --metrics "$TMP/$2.jsonl" >/dev/null
  "$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["loss"])' "$TMP/$2.jsonl"
}
ours=$(loss_of "$TMP/run/model.safetensors" ours)
theirs=$(loss_of "$TMP/hf.safetensors" hf)
echo "first loss from adacc's file: $ours; from the file Python wrote: $theirs"
[[ "$ours" == "$theirs" ]] || { echo "FAIL: the losses differ" >&2; exit 1; }
echo "safetensors interoperability: ok"
