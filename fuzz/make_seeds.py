#!/usr/bin/env python3
"""Writes the starting seeds of the fuzz targets into tests/fuzz_corpus/<target>/.

The seeds are small valid inputs of each reader, for the tiny model the targets use
(L=1, C=4, H=1, V=8, T=4). They were then minimized together with what fuzzing found
(`<target>_fuzz -merge=1 NEW OLD`, see fuzz/README.md); crashes are kept as crash-*.
Run from the repository root: python3 fuzz/make_seeds.py
"""
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fuzz_corpus")
L, C, H, V, T = 1, 4, 1, 8, 4
VP = 128


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def floats(n, start=0):
    return struct.pack("<%df" % n, *[((start + i) % 7 - 3) * 0.125 for i in range(n)])


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, bytes)]"""
    header, data, off = {}, b"", 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        data += raw
        off += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def hf_model(prefix="transformer."):
    """The tiny model in Hugging Face's layout (Conv1D weights as (in, out), wte V rows)."""
    shapes = [("wte.weight", [V, C]), ("wpe.weight", [T, C])]
    for l in range(L):
        p = "h.%d." % l
        shapes += [(p + "ln_1.weight", [C]), (p + "ln_1.bias", [C]),
                   (p + "attn.c_attn.weight", [C, 3 * C]), (p + "attn.c_attn.bias", [3 * C]),
                   (p + "attn.c_proj.weight", [C, C]), (p + "attn.c_proj.bias", [C]),
                   (p + "ln_2.weight", [C]), (p + "ln_2.bias", [C]),
                   (p + "mlp.c_fc.weight", [C, 4 * C]), (p + "mlp.c_fc.bias", [4 * C]),
                   (p + "mlp.c_proj.weight", [4 * C, C]), (p + "mlp.c_proj.bias", [C])]
    shapes += [("ln_f.weight", [C]), ("ln_f.bias", [C])]
    out = []
    for i, (name, shape) in enumerate(shapes):
        n = 1
        for d in shape:
            n *= d
        out.append((prefix + name, "F32", shape, floats(n, i)))
    return out


def llmc_model(vp=VP):
    n = vp * C + T * C + L * (12 * C * C + 13 * C) + 2 * C
    header = [20240326, 3, T, V, L, H, C, vp] + [0] * 248
    return struct.pack("<256i", *header) + floats(n)


def shard(tokens):
    header = [20240520, 1, len(tokens)] + [0] * 253
    return struct.pack("<256i", *header) + struct.pack("<%dH" % len(tokens), *tokens)


spec = "L=%d,C=%d,H=%d,V=%d,T=%d" % (L, C, H, V, T)

# safetensors: the reader alone.
put("safetensors", "seed-model", safetensors(hf_model(), {"format": "pt", "adacc.config": spec}))
put("safetensors", "seed-dtypes", safetensors(
    [("a", "F16", [2, 2], b"\0" * 8), ("b", "BF16", [3], b"\0" * 6), ("c", "I64", [1], b"\0" * 8),
     ("empty", "F32", [0, 5], b""), ("s", "F32", [], floats(1))], {"k": "v"}))
put("safetensors", "seed-empty", safetensors([]))

# llmc_model: llm.c checkpoints, and the model files of the same entry points.
put("llmc_model", "seed-llmc", llmc_model())
put("llmc_model", "seed-llmc-vp256", llmc_model(256))
put("llmc_model", "seed-adacc", safetensors(hf_model(), {"format": "pt", "adacc.config": spec}))
put("llmc_model", "seed-hf", safetensors(hf_model("")))

# tokens: shards and text.
put("tokens", "seed-shard", shard([i * 37 % 50257 for i in range(40)]))
put("tokens", "seed-text", "In the beginning God created the heaven and the earth.\n" * 2)
put("tokens", "seed-utf8", "Grüße, 世界! \t tabs\n")

# checkpoint_json: checkpoint.json beside valid model-1 and optim-1 files.
state = {"step": 1, "model": "model-1.safetensors", "optim": "optim-1.safetensors",
         "config": spec, "rng": ["1", "2", "3", "18446744073709551615"],
         "loader": {"position": 8, "epoch": 0}, "optimizer_steps": 1,
         "options": {"batch": 2, "seq": 4, "lr": 0.0003, "schedule": "cosine"}}
put("checkpoint_json", "seed-valid", json.dumps(state, indent=2) + "\n")
state2 = dict(state, options="not json, kept as a string", loader={"position": 3, "epoch": 7})
del state2["optimizer_steps"]
put("checkpoint_json", "seed-options-string", json.dumps(state2))

# plan: plan files of the tiny model's graph.
put("plan", "seed-full", json.dumps({"planner": "full", "tensors": {
    "h0.ln1.out": "recompute", "h0.qkv.out": "recompute", "h0.fc.out": "recompute",
    "h0.gelu.out": "recompute"}}, indent=2))
put("plan", "seed-compress", json.dumps({"planner": "mine", "tensors": {
    "h0.fc.out": {"compress": "bf16"}, "h0.attn_proj.out": {"compress": "int8-channel"},
    "h0.gelu.out": "keep"}}))
put("plan", "seed-empty", "{}")

# budget: --budget texts.
for i, text in enumerate(["6GiB", "500000000", "30%", "1.5 tb", "512 MB", "0", "100%"]):
    put("budget", "seed-%d" % i, text)

# model_spec: --model texts.
for i, text in enumerate(["gpt2", "gpt2-xl", "L=6,C=384,H=6,V=256,T=512", spec, "V=50257"]):
    put("model_spec", "seed-%d" % i, text)
