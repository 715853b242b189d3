#!/usr/bin/env python3
"""torch_gpt2_train.py: the PyTorch side of `npm run bench:train:peer`.

Trains the same model as kiln's GPT-2 (src/models/gpt2.ts: learned token and position embeddings,
pre-LayerNorm blocks with biases, one fused qkv projection, causal attention, tanh GELU, final
LayerNorm, the head tied to the token embedding) with the same recipe as a kiln training config
(GPT-2 initialisation, AdamW with weight decay on matrices and embeddings only, global-norm clipping,
linear warmup then cosine decay, random windows of a character-level corpus), and prints one JSON
object per line: {"step", "loss", "lr", "ms"} per step and {"step", "eval_loss"} per evaluation.
It is a peer for measuring, not a dependency of kiln: written for this benchmark, runs on Debian's
python3-torch (1.13) with no other packages.
"""

import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--block", type=int, default=64)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--decay", type=int, default=2000)
    p.add_argument("--beta1", type=float, default=0.9)
    p.add_argument("--beta2", type=float, default=0.99)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--eval-interval", type=int, default=0, help="0: only after the last step")
    p.add_argument("--eval-batches", type=int, default=20)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 leaves the default")
    return p.parse_args()


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, 4 * dim)
        self.down = nn.Linear(4 * dim, dim)

    def forward(self, x, mask):
        b, t, c = x.shape
        h = self.heads
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, h, c // h).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(c // h))
        att = att.masked_fill(mask[:t, :t] == 0, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, c)
        x = x + self.proj(y)
        return x + self.down(F.gelu(self.up(self.ln2(x)), approximate="tanh"))


class Gpt2(nn.Module):
    def __init__(self, vocab, block, layers, heads, dim):
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.wpe = nn.Embedding(block, dim)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim)
        self.register_buffer("mask", torch.tril(torch.ones(block, block)))
        # GPT-2's initialisation (as kiln's src/train/init.ts): normal(0, 0.02) weights, zero biases,
        # residual projections scaled by 1/sqrt(2 * layers).
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif "ln" in name:
                nn.init.ones_(p)
            else:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith(("proj.weight", "down.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, ids, targets):
        b, t = ids.shape
        x = self.wte(ids) + self.wpe(torch.arange(t))
        for blk in self.blocks:
            x = blk(x, self.mask)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(b * t, -1), targets.view(b * t))


def lr_at(step, a):
    """Step is 1-based (kiln's numbering): warmup over steps 1..warmup, cosine to min-lr at decay."""
    it = step - 1
    if it < a.warmup:
        return a.lr * (it + 1) / (a.warmup + 1)
    if it > a.decay:
        return a.min_lr
    ratio = (it - a.warmup) / max(1, a.decay - a.warmup)
    return a.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (a.lr - a.min_lr)


def main():
    a = parse()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    text = open(a.data, encoding="utf-8").read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([index[c] for c in text], dtype=torch.long)
    split = int(len(data) * (1 - a.val_fraction))
    train, val = data[:split], data[split:]

    def batch(src):
        starts = torch.randint(len(src) - a.block - 1, (a.batch,))
        x = torch.stack([src[s : s + a.block] for s in starts])
        y = torch.stack([src[s + 1 : s + 1 + a.block] for s in starts])
        return x, y

    model = Gpt2(len(chars), a.block, a.layers, a.heads, a.dim)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": a.weight_decay}, {"params": other, "weight_decay": 0.0}],
        lr=a.lr, betas=(a.beta1, a.beta2),
    )
    print(json.dumps({"params": sum(p.numel() for p in model.parameters()), "vocab": len(chars),
                      "threads": torch.get_num_threads(), "torch": torch.__version__}), flush=True)

    def evaluate(step):
        model.eval()
        with torch.no_grad():
            losses = [model(*batch(val)).item() for _ in range(a.eval_batches)]
        model.train()
        print(json.dumps({"step": step, "eval_loss": sum(losses) / len(losses)}), flush=True)

    for step in range(1, a.iters + 1):
        t0 = time.perf_counter()
        lr = lr_at(step, a)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch(train)
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        value = loss.item()
        ms = (time.perf_counter() - t0) * 1000
        print(json.dumps({"step": step, "loss": value, "lr": lr, "ms": ms}), flush=True)
        if (a.eval_interval and step % a.eval_interval == 0) or step == a.iters:
            evaluate(step)
    return 0


if __name__ == "__main__":
    sys.exit(main())
