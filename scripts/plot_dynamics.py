"""Figures for docs/model.md: temporal diffusion smoothing a noisy signal, Gray-Scott fusion on a
synthetic query-aligned segment.

    python scripts/plot_dynamics.py   # writes docs/images/diffusion_smoothing.png, gray_scott_fusion.png
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from transformers_rdmf.atomic import atomic_savefig  # noqa: E402
from transformers_rdmf.reaction_diffusion import gray_scott_fusion, temporal_diffusion_closed_form  # noqa: E402

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


def plot_diffusion(path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    clips = 75
    clean = torch.zeros(clips)
    clean[25:45] = 1.0
    noisy = clean + 0.35 * torch.randn(clips, generator=g)
    x, mask = noisy.view(1, clips, 1).double(), torch.ones(1, clips)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.plot(clean, color="0.6", lw=3, label="clean segment")
    ax.plot(noisy, color="0.3", lw=0.8, label="noisy clip feature (K=0)")
    for steps, color in [(5, "tab:blue"), (10, "tab:orange"), (20, "tab:red")]:
        smooth = temporal_diffusion_closed_form(x, mask, 0.25, 1.0, steps).view(-1)
        ax.plot(smooth, color=color, lw=1.8, label=f"K={steps}, D dt=0.25")
    ax.set(
        xlabel="clip index (2 s clips)",
        ylabel="feature value",
        title="Temporal diffusion (eqs. 1-3), zero-flux ends",
    )
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)


def plot_gray_scott(path: Path) -> None:
    """Clips 30-44 carry the query's pattern: the reaction U V^2 is strongest there, the inhibitor grows there."""
    g = torch.Generator().manual_seed(1)
    clips, dim, steps = 75, 64, 60
    query = torch.randn(dim, generator=g)
    video = torch.randn(clips, dim, generator=g)
    video[30:45] = query + 0.3 * torch.randn(15, dim, generator=g)
    u0 = torch.sigmoid(video).view(1, clips, dim).double()
    v0 = torch.sigmoid(query).view(1, 1, dim).expand(1, clips, dim).double()
    mask = torch.ones(1, clips)
    history = []
    for t in range(steps + 1):
        u, v = gray_scott_fusion(u0, v0, mask, 0.2, 0.1, 0.04, 0.06, 1.0, t)
        inhibitor = v.mean(-1).view(-1)
        history.append(inhibitor - inhibitor.mean())
    similarity = torch.nn.functional.cosine_similarity(video, query.view(1, -1), dim=-1)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(8, 5.2), sharex=True, gridspec_kw={"height_ratios": [1, 2]}
    )
    top.bar(range(clips), similarity, color=["tab:red" if 30 <= i < 45 else "0.6" for i in range(clips)])
    top.set(
        ylabel="cos(clip, query)",
        title="Gray-Scott fusion (eqs. 5-8) on a query-aligned segment (clips 30-44)",
    )
    image = bottom.imshow(torch.stack(history), aspect="auto", origin="lower", cmap="RdBu_r")
    bottom.set(xlabel="clip index", ylabel="Euler step t (T_r=5 in the model)")
    bottom.axhline(5, color="white", lw=0.8, ls="--")
    for edge in (29.5, 44.5):
        bottom.axvline(edge, color="cyan", lw=0.8, ls=":")
    fig.colorbar(image, ax=[top, bottom], label="inhibitor V, mean over channels,\nminus its mean over clips")
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    plot_diffusion(IMAGES / "diffusion_smoothing.png")
    plot_gray_scott(IMAGES / "gray_scott_fusion.png")
    print(f"wrote {IMAGES}/diffusion_smoothing.png and gray_scott_fusion.png")


if __name__ == "__main__":
    main()
