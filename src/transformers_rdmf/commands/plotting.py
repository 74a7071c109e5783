"""The picture ``rdmf predict`` writes: saliency over time with the moments or top clips marked."""


def plot_prediction(
    saliency: list[dict], moments: list[dict] | None, duration: float, query: str, gt=None, clips=None
):
    """Saliency over time (one step per clip), with predicted moments shaded (darker = better) or, for a
    highlight-only checkpoint, its top ``clips`` shaded (darker = higher rank) and dotted; ground truth
    hatched."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 3.2))
    for shade in _shaded_spans(moments or [], clips or []):
        axis.axvspan(
            shade["start"], shade["end"], color="tab:orange", alpha=shade["alpha"], lw=0, label=shade["label"]
        )
    if gt is not None:
        axis.axvspan(
            gt[0], gt[1], facecolor="none", edgecolor="tab:green", hatch="//", lw=1.5, label="ground truth"
        )
    edges = [clip["start"] for clip in saliency] + [saliency[-1]["end"]]
    values = [clip["saliency"] for clip in saliency]
    axis.stairs(values, edges, baseline=None, color="tab:blue", lw=2, label="saliency")
    if clips:
        centres = [(clip["start"] + clip["end"]) / 2 for clip in clips]
        axis.plot(
            centres, [clip["saliency"] for clip in clips], "o", color="tab:red", ms=4, label="their scores"
        )
    axis.set_xlim(0, max(duration, edges[-1]))
    axis.set_ylim(0, 1.05)
    axis.set_xlabel("time (s)")
    axis.set_ylabel("saliency")
    axis.set_title(f'"{query}"', fontsize=10)
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=4, fontsize=8, frameon=False)
    figure.tight_layout()
    return figure


def _shaded_spans(moments: list[dict], clips: list[dict]) -> list[dict]:
    """Spans to shade: moments by score relative to the best, or top clips by rank."""
    best = max((m["score"] for m in moments), default=1.0) or 1.0
    shades = [
        {**m, "alpha": 0.1 + 0.3 * m["score"] / best, "label": "predicted moments" if i == 0 else None}
        for i, m in enumerate(moments)
    ]
    shades += [
        {
            **c,
            "alpha": 0.2 + 0.4 * (len(clips) - i) / len(clips),
            "label": f"top {len(clips)} clips" if i == 0 else None,
        }
        for i, c in enumerate(clips)
    ]
    return shades
