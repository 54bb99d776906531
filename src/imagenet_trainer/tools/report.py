"""The evaluation report: per-class accuracy, the confusion matrix (CSV and PNG) and the worst images."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from imagenet_trainer.files import atomic_write, shown, write_text_atomic


def _write_text(path: Path, text: str) -> None:
    write_text_atomic(path, text)


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, n: int) -> np.ndarray:
    """(n, n) counts: row = true class, column = predicted class."""
    return np.bincount(labels * n + preds, minlength=n * n).reshape(n, n)


def _most_confused(row: np.ndarray, i: int, classes: list[str]) -> str:
    off = row.copy()
    off[i] = 0
    return classes[int(off.argmax())] if off.max() > 0 else ""


def write_report(out_dir: str | os.PathLike, classes: list[str], labels, preds, p_true, paths, worst: int = 50) -> dict:
    """Write per_class.csv, confusion.csv, confusion.png and worst.csv; returns the per-class rows."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels, preds, p_true = np.asarray(labels), np.asarray(preds), np.asarray(p_true)
    n = len(classes)
    cm = confusion_matrix(labels, preds, n)
    support = cm.sum(1)
    rows = [{"class": c, "images": int(support[i]),
             "top1_accuracy": round(100.0 * cm[i, i] / support[i], 4) if support[i] else None,
             "most_confused_with": _most_confused(cm[i], i, classes)} for i, c in enumerate(classes)]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    _write_text(out / "per_class.csv", buf.getvalue())
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["true \\ predicted", *classes])
    for c, row in zip(classes, cm):
        w.writerow([c, *row.tolist()])
    _write_text(out / "confusion.csv", buf.getvalue())
    order = np.argsort(p_true)[:worst]  # lowest probability given to the true class first
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "true_class", "predicted_class", "p_true_class"])
    for k in order:
        w.writerow([paths[k], classes[labels[k]], classes[preds[k]], f"{p_true[k]:.6f}"])
    _write_text(out / "worst.csv", buf.getvalue())
    _confusion_png(cm, [shown(c) for c in classes], out / "confusion.png")
    return {"per_class": rows, "worst": [{"path": paths[k], "true": classes[labels[k]], "predicted": classes[preds[k]],
                                          "p_true": float(p_true[k])} for k in order]}


def _confusion_png(cm: np.ndarray, classes: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(classes)
    rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    side = min(4 + 0.3 * n, 30)
    fig, ax = plt.subplots(figsize=(side, side * 0.85))
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    if n <= 50:
        ax.set_xticks(range(n), classes, rotation=90, fontsize=7)
        ax.set_yticks(range(n), classes, fontsize=7)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write(path, lambda f: f.write(buf.getvalue()))
