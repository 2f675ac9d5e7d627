#!/usr/bin/env python3
"""Reference NLL for `momentkv perplexity`, from Hugging Face transformers.

The quantity (crates/eval/src/perplexity.rs): with x_0 .. x_{C-1} the first C ids of a text
(the model's tokenizer, its own special tokens, no chat template) and a prefix of P tokens,

    l_t = -log softmax(logits[t - 1])[x_t],    NLL = mean of l_t over t = P .. C-1

computed here in one causal forward pass (f32, CPU), which is what the full cache gives whatever
the prefill/stride split.

StreamingLLM at a budget B with S sinks, evicting at every token (`--policy streaming:sinks=S
--budget B --stride 1 --evict-during decode`), is the same forward pass under another mask: the
cache stores keys after RoPE, so a token reading position q attends over exactly the sinks and the
newest B - S earlier tokens, k < S or q - (B - S) <= k <= q, and every key and value it reads was
computed under that rule too. The fixture reference records that as well.

Default: the committed test fixture, for tests/perplexity.rs (run from the repository root; the
output is committed and re-running reproduces it):

    pip install torch transformers safetensors
    python3 scripts/perplexity_reference.py   # writes tests/fixtures/perplexity-reference.json

It tokenizes TEXT with each tiny fixture's tokenizer (tests/fixtures/llama-tied, qwen2), keeps
the first CONTEXT ids and records them with the per-position and mean NLL over PREFIX..CONTEXT-1,
for the full cache and for StreamingLLM at STREAMING_BUDGET with STREAMING_SINKS sinks.

With --real-model, the same on a real GGUF checkpoint instead (nothing is written; the JSON goes
to stdout), for the README's full-cache figure beside `momentkv perplexity`:

    pip install torch transformers gguf accelerate
    python3 scripts/perplexity_reference.py \\
        --real-model ~/.cache/momentkv/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf \\
        --text ~/.cache/momentkv/paul-graham-essays/PaulGrahamEssays.json --context 2048 --prefix 64

tests/fixtures/perplexity-real-reference.jsonl is this command's output for both real models
(SmolLM2-135M-Instruct Q4_1 and Qwen2.5-Coder-0.5B-Instruct Q4_K_M) on
`--text ~/.cache/momentkv/pride-and-prejudice/prideandprejudice.txt.gz --context 256 --prefix 64`,
one line each.

transformers dequantizes the GGUF weights to f32. A `.json` text file is read as RULER's essays
(`{"text": ...}`), as `momentkv perplexity --text paul-graham-essays` reads them.
"""

import argparse
import gzip
import json
import math
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
OUT = FIXTURES / "perplexity-reference.json"
MODELS = ["llama-tied", "qwen2"]
CONTEXT = 200
PREFIX = 32
STREAMING_BUDGET = 64
STREAMING_SINKS = 4
TEXT = (
    "The library kept its records in long rows of cabinets, and every evening the keeper walked "
    "the aisles to check that nothing had been moved. Some drawers held letters, some held maps, "
    "and one held nothing but the keys to the others. Visitors asked why the building needed so "
    "many locks; the keeper said that memory is only useful when it can be found again. The quick "
    "brown fox jumps over the lazy dog, and the key and the value are cached while the query "
    "looks them up. A journey of a thousand miles begins with a single step."
)


def streaming_mask(n: int, budget: int, sinks: int) -> torch.Tensor:
    """The additive [1, 1, n, n] mask of StreamingLLM evicting at every token: query q sees
    k < sinks or q - (budget - sinks) <= k <= q."""
    q = torch.arange(n)[:, None]
    k = torch.arange(n)[None, :]
    allowed = (k <= q) & ((k < sinks) | (k >= q - (budget - sinks)))
    mask = torch.zeros(n, n)
    mask[~allowed] = torch.finfo(torch.float32).min
    return mask[None, None]


def per_token_nll(model, ids: list[int], prefix: int, mask=None) -> list[float]:
    """l_t for t = prefix .. len(ids) - 1, from one forward pass in f32 (causal, or under the
    additive 4-D `mask`)."""
    with torch.no_grad():
        logits = model(torch.tensor([ids]), attention_mask=mask).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    targets = torch.tensor(ids[prefix:])
    return (-logp[prefix - 1 : len(ids) - 1].gather(1, targets[:, None])[:, 0]).tolist()


def summary(ids: list[int], prefix: int, nll: list[float]) -> dict:
    return {
        "ids": ids,
        "prefix": prefix,
        "context": len(ids),
        "nll": sum(nll) / len(nll),
        "per_token": nll,
    }


def fixtures() -> None:
    out = {
        "script": "scripts/perplexity_reference.py",
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "text": TEXT,
        "models": {},
    }
    for name in MODELS:
        path = FIXTURES / name
        tokenizer = AutoTokenizer.from_pretrained(path)
        # Eager attention applies a 4-D mask as given.
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch.float32, attn_implementation="eager"
        ).eval()
        ids = tokenizer(TEXT)["input_ids"]
        assert len(ids) >= CONTEXT, f"{name}: the text has {len(ids)} tokens, fewer than {CONTEXT}"
        ids = ids[:CONTEXT]
        full = summary(ids, PREFIX, per_token_nll(model, ids, PREFIX))
        mask = streaming_mask(CONTEXT, STREAMING_BUDGET, STREAMING_SINKS)
        streaming = per_token_nll(model, ids, PREFIX, mask)
        full["streaming"] = {
            "budget": STREAMING_BUDGET,
            "sinks": STREAMING_SINKS,
            "nll": sum(streaming) / len(streaming),
            "per_token": streaming,
        }
        out["models"][name] = full
        print(
            f"{name}: NLL {full['nll']:.6f} over {CONTEXT - PREFIX} tokens, StreamingLLM at "
            f"{STREAMING_BUDGET}: {full['streaming']['nll']:.6f}"
        )
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"written to {OUT.relative_to(ROOT)}")


def read_text(path: Path) -> str:
    if path.suffix == ".json":
        return json.loads(path.read_text())["text"]
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes()).decode()
    return path.read_text()


def real_model(gguf: Path, text: Path, context: int, prefix: int) -> None:
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    ).eval()
    ids = tokenizer(read_text(text))["input_ids"]
    if len(ids) < context:
        raise SystemExit(f"the text has {len(ids)} tokens, fewer than the context of {context}")
    ids = ids[:context]
    nll = per_token_nll(model, ids, prefix)
    result = summary(ids, prefix, nll)
    result["model"] = gguf.name
    result["ppl"] = math.exp(result["nll"])
    del result["per_token"]
    result["first_ids"] = result.pop("ids")[:16]
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-model", type=Path, help="a GGUF checkpoint (see above)")
    parser.add_argument("--text", type=Path, help="with --real-model: a text or essays JSON file")
    parser.add_argument("--context", type=int, default=2048)
    parser.add_argument("--prefix", type=int, default=64)
    args = parser.parse_args()
    if args.real_model is None:
        fixtures()
    elif args.text is None:
        parser.error("--real-model needs --text")
    else:
        real_model(args.real_model, args.text, args.context, args.prefix)


if __name__ == "__main__":
    main()
