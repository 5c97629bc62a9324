#!/usr/bin/python3
"""Times one GPT-2 training step (forward + backward + AdamW, fp32) in PyTorch on CPU.

A self-contained nanoGPT-style GPT-2 (pre-LN blocks, tanh-GELU, causal attention as
explicit matmul + softmax, tied lm-head, vocab padded to 50304, LayerNorm eps 1e-5,
biases), torch.optim.AdamW (lr 1e-4, other settings default), 2 threads.

  /usr/bin/python3 tools/compare/pytorch_step.py --model gpt2 --batch 4 --seq 64

Each step (zero_grad(set_to_none=True), forward, loss.backward(), optimizer.step()) is
timed with time.perf_counter; the first 2 are warm-up. Prints one line:
  pytorch <version> model=<m> B=<b> T=<t> median_ms=<x> tok_s=<y> peak_rss_mib=<z>
Written for Debian 12's python3-torch (torch 1.13: no scaled_dot_product_attention).
"""
import argparse
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {"gpt2": (12, 768, 12), "gpt2-tiny": (6, 384, 6)}  # L, C, H
VOCAB, PADDED_VOCAB, MAX_SEQ = 50257, 50304, 1024
WARMUP = 2


class Attention(nn.Module):
    def __init__(self, C, H, max_seq):
        super().__init__()
        self.H = H
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)
        mask = torch.tril(torch.ones(max_seq, max_seq, dtype=torch.bool))
        self.register_buffer("mask", mask.view(1, 1, max_seq, max_seq), persistent=False)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.H, C // self.H).transpose(1, 2)
        k = k.view(B, T, self.H, C // self.H).transpose(1, 2)
        v = v.view(B, T, self.H, C // self.H).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(~self.mask[:, :, :T, :T], float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.c_fc = nn.Linear(C, 4 * C)
        self.c_proj = nn.Linear(4 * C, C)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, C, H, max_seq):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.attn = Attention(C, H, max_seq)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        self.mlp = MLP(C)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    def __init__(self, L, C, H, vocab=PADDED_VOCAB, max_seq=MAX_SEQ):
        super().__init__()
        self.wte = nn.Embedding(vocab, C)
        self.wpe = nn.Embedding(max_seq, C)
        self.h = nn.ModuleList(Block(C, H, max_seq) for _ in range(L))
        self.ln_f = nn.LayerNorm(C, eps=1e-5)
        self.lm_head = nn.Linear(C, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * L) if name.endswith("c_proj.weight") else 0.02
                nn.init.normal_(p, mean=0.0, std=std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        B, T = idx.shape
        pos = torch.arange(T, dtype=torch.long)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=sorted(CONFIGS), default="gpt2")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--steps", type=int, default=7)
    args = ap.parse_args()
    if args.steps <= WARMUP:
        ap.error(f"--steps must exceed the {WARMUP} warm-up steps")
    if not 1 <= args.seq <= MAX_SEQ:
        ap.error(f"--seq must be in 1..{MAX_SEQ}")

    torch.set_num_threads(2)
    torch.manual_seed(1)
    L, C, H = CONFIGS[args.model]
    model = GPT2(L, C, H)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tokens = torch.randint(0, VOCAB, (args.batch, args.seq))
    targets = torch.randint(0, VOCAB, (args.batch, args.seq))

    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(tokens, targets)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times[WARMUP:])
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"pytorch {torch.__version__} model={args.model} B={args.batch} T={args.seq} "
          f"median_ms={median * 1e3:.2f} tok_s={args.batch * args.seq / median:.1f} "
          f"peak_rss_mib={peak_rss_mib:.1f}")


if __name__ == "__main__":
    main()
