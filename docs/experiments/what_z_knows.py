"""What a 16-bar model's codes know about each bar: pitch, rhythm, or only the tune's key.

    python docs/experiments/what_z_knows.py models/hierdec-mel_16bar_cpu/model.pt [...]

For each model, on 256 test windows: greedy decoding from z = mu, scored at the input's note
onsets (pitch and timing) and for rhythm (a note starts where the input starts one); per bar, the
share of the bar's pitches that the greedy decode plays in that bar; and, for a model with the
bag-of-notes head, the share of the bar's pitches among the head's top k (k = how many pitches
the bar has) against two baselines that know nothing of the bar: the window's own pitch
histogram over all 16 bars, and the head of the bar eight bars away.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from evaluation.metrics import melody_onset_scores  # noqa: E402
from evaluation.testset import load_examples  # noqa: E402
from pipelines.representation import MELODY_FIRST_PITCH_TOKEN  # noqa: E402
from training.checkpoint import load_model  # noqa: E402
from training.objective import kl_divergence  # noqa: E402


def top_k_recall(scores: np.ndarray, pitches: set[int]) -> float:
    scores = scores.copy()
    scores[:MELODY_FIRST_PITCH_TOKEN] = -np.inf
    top = np.argsort(-scores, kind="stable")[: len(pitches)]
    return len(pitches & set(top.tolist())) / len(pitches)


def report(path: str, limit: int = 256) -> None:
    model, cfg = load_model(path)
    root = Path(__file__).resolve().parents[2] / "datasets" / cfg.dataset
    tokens = load_examples(root, "test", cfg.tracks, cfg.num_bars, limit=limit).tokens
    x = torch.as_tensor(tokens)
    with torch.no_grad():
        out = model(x, sample_z=False)
        greedy = model.decode(out.mu).numpy()[..., 0]
        bags = None
        if out.bag_logits is not None:
            bags = out.bag_logits[0].float().numpy()
    truth = tokens[..., 0]
    onsets = melody_onset_scores(greedy, truth)
    bars, steps = cfg.num_bars, cfg.steps_per_bar
    played, bag, histogram, other = [], [], [], []
    for i in range(len(truth)):
        counts = np.bincount(truth[i], minlength=cfg.tracks[0].num_classes).astype(float)
        for u in range(bars):
            bar = truth[i, u * steps : (u + 1) * steps]
            pitches = {int(t) for t in bar if t >= MELODY_FIRST_PITCH_TOKEN}
            if not pitches:
                continue
            decoded = greedy[i, u * steps : (u + 1) * steps]
            played.append(len(pitches & {int(t) for t in decoded}) / len(pitches))
            histogram.append(top_k_recall(counts, pitches))
            if bags is not None:
                bag.append(top_k_recall(bags[i, u], pitches))
                other.append(top_k_recall(bags[i, (u + bars // 2) % bars], pitches))
    kl_bits = float(kl_divergence(out.mu, out.sigma).mean() / np.log(2))
    print(f"{path}: KL {kl_bits:.0f} bits")
    print(
        f"  greedy: onset accuracy {onsets['onset_accuracy']:.3f}, onset recall "
        f"{onsets['onset_recall']:.3f}, precision {onsets['onset_precision']:.3f}, elsewhere "
        f"{onsets['other_accuracy']:.3f}; a bar's pitches it plays in that bar {np.mean(played):.3f}"
    )
    if bags is not None:
        print(
            f"  a bar's pitches in the bag head's top k: {np.mean(bag):.3f}; baselines: the "
            f"window's pitch histogram {np.mean(histogram):.3f}, the head of the bar "
            f"{bars // 2} bars away {np.mean(other):.3f}"
        )


if __name__ == "__main__":
    torch.set_num_threads(1)
    for model_path in sys.argv[1:]:
        report(model_path)
