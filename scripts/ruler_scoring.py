"""RULER's answer lengths and scoring, and the default model's path, shared by the scripts that
answer RULER samples outside momentkv (ruler_reference.py, kvpress_ruler.py). Standard library
only."""

import os
import re
from pathlib import Path

# RULER (nvidia-long-context-eval 26.3, constants.py): answer tokens per task family; kvpress's
# RULER dataset copies them as its `max_new_tokens`.
TOKENS_TO_GENERATE = {"niah": 128, "vt": 30, "cwe": 120, "fwe": 50, "qa": 32}


def task_family(task: str) -> str:
    return task.split("_")[0]


def postprocess(prediction: str) -> str:
    """RULER's evaluate.py: strip, control characters to newlines, strip."""
    return re.sub(r"[\x00-\x1f]", "\n", prediction.strip()).strip()


def score(task: str, prediction: str, references: list[str]) -> float:
    """RULER's string_match_part for qa, string_match_all otherwise, in percent."""
    pred = postprocess(prediction).lower()
    hits = [1.0 if r.lower() in pred else 0.0 for r in references]
    if not hits:
        return 0.0
    if task_family(task) == "qa":
        return 100.0 * max(hits)
    return 100.0 * sum(hits) / len(hits)


def default_model() -> Path:
    home = Path(os.environ.get("MOMENTKV_HOME") or Path.home() / ".cache" / "momentkv")
    return home / "smollm2-135m" / "SmolLM2-135M-Instruct.Q4_1.gguf"
