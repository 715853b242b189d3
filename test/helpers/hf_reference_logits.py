# hf_reference_logits.py: an independent reference for exported Hugging Face folders. It reads
# config.json and model.safetensors with nothing of kiln's and runs the forward pass the way
# transformers' modeling_gpt2.py (Conv1D weights as (in, out), gelu_new, LayerNorm) and
# modeling_llama.py (Linear weights as (out, in), RMSNorm, rotate_half RoPE, SwiGLU, grouped kv heads)
# define it, in float64 numpy. Prints the logits of the last position as JSON.
# Usage: python3 hf_reference_logits.py FOLDER '[ids...]'

import json
import math
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", f"{name}: {t['dtype']} (this reference reads F32)"
        lo, hi = t["data_offsets"]
        out[name] = np.frombuffer(data[base + lo : base + hi], dtype="<f4").astype(np.float64).reshape(t["shape"])
    return out


def causal_attention(q, k, v):
    # q, k, v: (heads, T, hd)
    t, hd = q.shape[1], q.shape[2]
    s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
    s = s + np.triu(np.full((t, t), -np.inf), 1)
    s = np.exp(s - s.max(-1, keepdims=True))
    p = s / s.sum(-1, keepdims=True)
    return p @ v


def gpt2(cfg, w, ids):
    d, nh = cfg["n_embd"], cfg["n_head"]
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    g = lambda name: w["transformer." + name] if "transformer." + name in w else w[name]

    def ln(x, name):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * g(name + ".weight") + g(name + ".bias")

    def gelu_new(x):
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))

    t = len(ids)
    h = g("wte.weight")[ids] + g("wpe.weight")[np.arange(t)]
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        qkv = ln(h, p + "ln_1") @ g(p + "attn.c_attn.weight") + g(p + "attn.c_attn.bias")  # Conv1D: x @ (in, out)
        q, k, v = (qkv[:, j * d : (j + 1) * d].reshape(t, nh, d // nh).transpose(1, 0, 2) for j in range(3))
        o = causal_attention(q, k, v).transpose(1, 0, 2).reshape(t, d)
        h = h + o @ g(p + "attn.c_proj.weight") + g(p + "attn.c_proj.bias")
        m = gelu_new(ln(h, p + "ln_2") @ g(p + "mlp.c_fc.weight") + g(p + "mlp.c_fc.bias"))
        h = h + m @ g(p + "mlp.c_proj.weight") + g(p + "mlp.c_proj.bias")
    h = ln(h, "ln_f")
    head = w["lm_head.weight"] if "lm_head.weight" in w else g("wte.weight")
    return h[-1] @ head.T


def llama(cfg, w, ids):
    d, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hd = cfg.get("head_dim") or d // nh
    eps = cfg.get("rms_norm_eps", 1e-6)
    theta = cfg.get("rope_theta", 10000.0)
    assert cfg.get("rope_scaling") is None, "this reference has no RoPE scaling"

    def rms(x, name):
        return x / np.sqrt((x**2).mean(-1, keepdims=True) + eps) * w[name]

    t = len(ids)
    inv_freq = 1.0 / theta ** (np.arange(0, hd, 2) / hd)
    freqs = np.outer(np.arange(t), inv_freq)
    emb = np.concatenate([freqs, freqs], -1)  # (T, hd)
    cos, sin = np.cos(emb), np.sin(emb)

    def rope(x):  # (heads, T, hd), transformers' rotate_half
        x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
        return x * cos + np.concatenate([-x2, x1], -1) * sin

    h = w["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x = rms(h, p + "input_layernorm.weight")
        proj = lambda name, n: (x @ w[p + name].T).reshape(t, n, hd).transpose(1, 0, 2)  # Linear: x @ (out, in)^T
        q, k, v = proj("self_attn.q_proj.weight", nh), proj("self_attn.k_proj.weight", nkv), proj("self_attn.v_proj.weight", nkv)
        q, k = rope(q), rope(k)
        k, v = np.repeat(k, nh // nkv, 0), np.repeat(v, nh // nkv, 0)
        o = causal_attention(q, k, v).transpose(1, 0, 2).reshape(t, nh * hd)
        h = h + o @ w[p + "self_attn.o_proj.weight"].T
        x = rms(h, p + "post_attention_layernorm.weight")
        gate = x @ w[p + "mlp.gate_proj.weight"].T
        h = h + ((gate / (1 + np.exp(-gate))) * (x @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    h = rms(h, "model.norm.weight")
    tied = cfg.get("tie_word_embeddings", False) or "lm_head.weight" not in w
    head = w["model.embed_tokens.weight"] if tied else w["lm_head.weight"]
    return h[-1] @ head.T


def main():
    folder, ids = sys.argv[1], json.loads(sys.argv[2])
    with open(f"{folder}/config.json") as f:
        cfg = json.load(f)
    w = read_safetensors(f"{folder}/model.safetensors")
    arch = cfg["architectures"][0]
    logits = gpt2(cfg, w, ids) if arch == "GPT2LMHeadModel" else llama(cfg, w, ids) if arch == "LlamaForCausalLM" else None
    if logits is None:
        raise SystemExit(f"unsupported architecture {arch}")
    print(json.dumps([float(x) for x in logits]))


main()
