"""Run kvpress KVzipPress on the llama-tied fixture and check an independent re-implementation."""
import sys, math, numpy as np, torch
import kvpress
from kvpress import KVzipPress
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache, PreTrainedTokenizerFast
import kvpress.presses.kvzip_press as _kz
_kz.AutoTokenizer = PreTrainedTokenizerFast  # transformers 5.2 maps llama-tied to CodeLlamaTokenizer, which fails (no <unk>)

MODEL = "/work/main/tests/fixtures/llama-tied"
torch.set_num_threads(1)
model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32, attn_implementation="sdpa").eval()
tok = AutoTokenizer.from_pretrained(MODEL)
ctx_all = np.random.default_rng(0).permutation(np.arange(3, 300))[:240]

def run_kvpress(L, ratio, **kw):
    ids = torch.tensor(ctx_all[:L], dtype=torch.long)[None]
    press = KVzipPress(compression_ratio=ratio, **kw)
    cap = {}
    orig_prepare, orig_post = press.prepare, press.compress_post
    def prepare(model, tokenizer, **k):
        pairs = orig_prepare(model, tokenizer, **k)
        cap["pairs"] = [(a.clone(), r.clone()) for a, r in pairs]
        cap["prefix_length"] = press.prefix_length
        return pairs
    def post(model):
        cap["scores"] = press.score_val.detach().clone()
        return orig_post(model)
    press.prepare, press.compress_post = prepare, post
    cache = DynamicCache()
    with torch.no_grad():
        with press(model):
            model.model(input_ids=ids, past_key_values=cache)
    masked = []
    for layer in model.model.layers:
        b, h, s = layer.self_attn.masked_key_indices
        masked.append((h.clone(), s.clone()))
    cap["masked"] = masked
    cap["cache_len"] = [cache.layers[i].keys.shape[2] for i in range(len(cache.layers))]
    return cap

# ---------------- independent re-implementation ----------------
W = {k: v.detach() for k, v in model.state_dict().items()}
cfg = model.config
H, KV, D = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
G = H // KV
inv_freq = 1.0 / (cfg.rope_parameters["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.float64) / D))

def rms(x, w, eps=cfg.rms_norm_eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

def rope(x, pos):  # x [s, heads, D]
    f = pos[:, None].double() * inv_freq[None]
    emb = torch.cat([f, f], -1)
    cos, sin = emb.cos().float()[:, None], emb.sin().float()[:, None]
    x1, x2 = x[..., : D // 2], x[..., D // 2 :]
    return x * cos + torch.cat([-x2, x1], -1) * sin

def forward_layerwise(ids, pos, past):
    """One pass; past: list per layer of (k [KV,t,D], v) or None. Returns per-layer (q, k_all, v_all, h_norm)."""
    x = W["model.embed_tokens.weight"][ids]
    out = []
    for l in range(cfg.num_hidden_layers):
        p = f"model.layers.{l}."
        h = rms(x, W[p + "input_layernorm.weight"])
        q = (h @ W[p + "self_attn.q_proj.weight"].T).view(-1, H, D)
        k = (h @ W[p + "self_attn.k_proj.weight"].T).view(-1, KV, D)
        v = (h @ W[p + "self_attn.v_proj.weight"].T).view(-1, KV, D)
        q, k = rope(q, pos), rope(k, pos)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # heads first
        if past is not None:
            k = torch.cat([past[l][0], k], 1); v = torch.cat([past[l][1], v], 1)
        s, t = q.shape[1], k.shape[1]
        kk, vv = k.repeat_interleave(G, 0), v.repeat_interleave(G, 0)
        logits = q @ kk.transpose(1, 2) / math.sqrt(D)
        mask = torch.ones(s, t, dtype=torch.bool).tril(t - s)
        att = logits.masked_fill(~mask, float("-inf")).softmax(-1) @ vv
        o = att.transpose(0, 1).reshape(s, H * D) @ W[p + "self_attn.o_proj.weight"].T
        x = x + o
        h2 = rms(x, W[p + "post_attention_layernorm.weight"])
        m = (torch.nn.functional.silu(h2 @ W[p + "mlp.gate_proj.weight"].T) * (h2 @ W[p + "mlp.up_proj.weight"].T)) @ W[p + "mlp.down_proj.weight"].T
        x = x + m
        out.append((q, k, v, h.norm(dim=-1)))
    return out

def ours(L, ratio, prefix_len, replays, n_sink=4, layerwise=False, plus=False):
    ids = torch.tensor(ctx_all[:L], dtype=torch.long)
    pre = forward_layerwise(ids, torch.arange(L), None)
    past = [(k, v) for (_, k, v, _) in pre]
    nl = cfg.num_hidden_layers
    score = torch.zeros(nl, KV, L)
    start = prefix_len
    for chunk_len, rep in replays:
        end = start + chunk_len
        q_len = len(rep)
        outs = forward_layerwise(torch.tensor(rep), torch.arange(L, L + q_len), past)
        sink = min(n_sink, start)
        for l, (q, k, v, hn) in enumerate(outs):
            sel = list(range(sink)) + list(range(start, end)) + list(range(L, L + q_len))
            ks = k[:, sel]  # [KV, m, D]
            qg = q.view(KV, G, q_len, D)
            lg = qg @ ks[:, None].transpose(-1, -2) / math.sqrt(D)  # [KV,G,q,m]
            m = len(sel)
            cm = torch.zeros(q_len, m, dtype=torch.bool)
            cm[:, m - q_len:] = ~torch.ones(q_len, q_len, dtype=torch.bool).tril()
            w = lg.masked_fill(cm, float("-inf")).softmax(-1)
            if plus:
                w = w / hn[None, None, :, None]
                Wo = W[f"model.layers.{l}.self_attn.o_proj.weight"].view(-1, KV, G, D)
                vs = v[:, sel]
                won = torch.einsum("jhgi,hti->hgtj", Wo, vs).norm(dim=-1)  # [KV,G,m]
                w = w * won[:, :, None, :]
            score[l, :, start:end] = w[..., sink:sink + (end - start)].amax(dim=(1, 2))
        start = end
    score[..., :n_sink] = score.amax() + 1.0
    n_total = score.numel()
    if layerwise:
        per_layer = [int(KV * L * ratio)] * nl
    else:
        n_pruned = int(n_total * ratio)
        flat = score.reshape(-1)
        order = np.lexsort((np.arange(n_total), flat.double().numpy()))  # ascending score, low index first
        pruned = order[:n_pruned]
        per_layer = np.bincount(pruned // (KV * L), minlength=nl).tolist()
    kept = []
    for l in range(nl):
        s = score[l].reshape(-1)
        order = np.lexsort((np.arange(KV * L), s.double().numpy()))
        pr = set(order[: per_layer[l]].tolist())
        kept.append([[t for t in range(L) if h * L + t not in pr] for h in range(KV)])
    return score, per_layer, kept

def compare(L, ratio, **kw):
    cap = run_kvpress(L, ratio, **kw)
    replays = [(a.shape[1], r[0].tolist()) for a, r in cap["pairs"]]
    sc, per_layer, kept = ours(L, ratio, cap["prefix_length"], replays,
                               layerwise=kw.get("layerwise", False), plus=kw.get("kvzip_plus_normalization", False))
    ref = cap["scores"][:, 0]
    kvp_kept = []
    for (h, s) in cap["masked"]:
        kvp_kept.append([[t for t in range(L) if not ((h == hh) & (s == t)).any()] for hh in range(KV)])
    sc_c, ref = sc[..., 4:], ref[..., 4:]
    diff = (sc_c - ref).abs().max().item()
    rel = ((sc_c - ref).abs() / ref.abs().clamp(min=1e-12)).max().item()
    same = kept == kvp_kept
    print(f"L={L} r={ratio} {kw}: prefix={cap['prefix_length']} replays={[ (c, len(r)) for c, r in replays]} "
          f"cache_len={cap['cache_len']} per_layer_pruned={per_layer} "
          f"kvpress_per_layer={[len(h) for h, _ in cap['masked']]} score_maxabs={diff:.3g} maxrel={rel:.3g} kept_equal={same}")
    if not same:
        for l in range(len(kept)):
            for hh in range(KV):
                a, b = set(kept[l][hh]), set(kvp_kept[l][hh])
                if a != b: print("   layer", l, "head", hh, "ours-only", sorted(a - b), "kvpress-only", sorted(b - a))
    return cap, sc, kept

if __name__ == "__main__":
    cap, sc, kept = compare(240, 0.5)
    print("replay ids chunk0 head:", cap["pairs"][0][1][0, :50].tolist())
    print("zero-score positions:", sorted(set(torch.nonzero(cap["scores"][:, 0] == 0)[:, 2].tolist())))
    print("kept counts per layer/head:", [[len(h) for h in l] for l in kept])
    compare(240, 0.75)
    compare(240, 0.5, layerwise=True)
    compare(96, 0.5, chunk_size=48)
    compare(96, 0.75, chunk_size=48)
    cap2, _, _ = compare(96, 0.5, chunk_size=48)
    print("chunk1 replay ids:", cap2["pairs"][1][1][0].tolist())
    compare(240, 0.5, kvzip_plus_normalization=True)
