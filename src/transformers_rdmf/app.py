"""``rdmf app`` (or ``python -m transformers_rdmf.app``): a Gradio page over the ``video-moment-retrieval``
pipeline (docs/app.md).

Upload a video (a raw-video checkpoint) or clip-feature files and a text-feature file (a feature checkpoint),
write one query per line, and see the ranked moments (a click on a row seeks the player to it), the saliency
over time and the top clips; a highlight-only checkpoint shows its top clips instead of moments. A video is
decoded and embedded once per upload (its clip features are kept; new queries reuse them), each press is
one pipeline call for all its queries, and results are kept per (file, queries, top-k). Bad input is a message in the page.
Gradio is imported only here, inside the functions: ``import transformers_rdmf`` never needs it.
"""

import argparse
import sys
from pathlib import Path

from .checkpoint_loading import load_checkpoint_model
from .commands.predict import load_feature_rows, load_feature_streams
from .pipeline_rdmf import TASK, VideoMomentRetrievalPipeline
from .processing_rdmf import RDMFProcessor

MOMENT_COLUMNS = ["query", "rank", "start", "end", "score"]
CLIP_COLUMNS = ["query", "rank", "start", "end", "saliency"]
HIGHLIGHT_ONLY_NOTE = (
    "This checkpoint's moment head was not trained (a highlight-only checkpoint): the table lists its "
    "top clips by saliency instead of moments."
)
# Runs in the browser after a row of the moments table is clicked: seek the player to that start and play.
SEEK_JS = """(start) => {
  const video = document.querySelector('#rdmf-player video');
  if (video && start !== null && start >= 0) { video.currentTime = start; video.play().catch(() => {}); }
  return start;
}"""


def parse_queries(text: str | None) -> list[str]:
    """The non-empty lines of ``text``: one query per line."""
    queries = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not queries:
        raise ValueError("query: write at least one query (one per line)")
    return queries


def checkpoint_folder(name: str | Path) -> Path:
    """A local checkpoint folder, or a Hub repository id downloaded to the Hub cache (``snapshot_download``)."""
    if Path(name).is_dir():
        return Path(name)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=str(name)))
    except Exception as error:  # an invalid id, no network, a missing repository: one message
        raise ValueError(
            f"--model: {name} is neither a folder nor a Hub repository that can be reached ({error})"
        ) from None


def load_finder(folder: str | Path):
    """The pipeline on a checked checkpoint: `load_checkpoint_model` first, so a damaged folder is one
    message (ValueError or OSError), then its processor when it has one (raw-video checkpoints)."""
    from transformers import pipeline

    folder = checkpoint_folder(folder)
    model = load_checkpoint_model(folder, "--model")
    processor = (
        RDMFProcessor.from_pretrained(folder) if (folder / "processor_config.json").is_file() else None
    )
    return pipeline(TASK, model=model, processor=processor, pipeline_class=VideoMomentRetrievalPipeline)


class MomentFinder:
    """The loaded pipeline, the clip features of each uploaded video (embedded once per upload, whatever
    the queries), and the results so far, keyed by (input files, queries, top-k)."""

    def __init__(self, folder: str | Path):
        self.finder = load_finder(folder)
        self.folder = str(folder)
        self.results: dict[tuple, list[dict]] = {}
        self.clip_features: dict[str, tuple] = {}  # an uploaded video -> (features, clip length, duration)

    @property
    def reads_videos(self) -> bool:
        return self.finder.model.config.video_backbone is not None

    def find_in_video(self, video: str | None, queries: list[str], top_k: int, progress=None) -> list[dict]:
        """Every query on the uploaded video: its clip features are computed on the first press and kept,
        then one pipeline call runs the queries on them (results cached per file and queries)."""
        if not video:
            raise ValueError("video: upload a video file first")
        if not self.reads_videos:
            raise ValueError("video: this checkpoint reads clip features; use the Features tab")
        key = (str(video), tuple(queries), top_k)
        if key not in self.results:
            report = progress or (lambda fraction, desc: None)
            if str(video) not in self.clip_features:  # decoded and embedded once per upload
                report(0.1, "decoding the video and embedding its clips (the backbone), once per upload")
                self.clip_features[str(video)] = self.finder.embed_video(str(video))
            features, clip_length, duration = self.clip_features[str(video)]
            report(
                0.6,
                f"{len(queries)} queries over {_windows(len(features), self.finder.model.config)} window(s) of clips",
            )
            inputs = {"video_features": features, "clip_length": clip_length, "duration": duration}
            self.results[key] = _as_list(self.finder(inputs, query=queries, top_k=top_k))
        return self.results[key]

    def find_in_features(self, streams, text_files, queries: list[str], top_k: int, clip_length: float):
        """One pipeline call on the clip-feature streams (each L2-normalised, concatenated) and the text
        features (one file for every query, or one per query, in order)."""
        if not streams or not text_files:
            raise ValueError("features: give the clip-feature file(s) and a text-feature file")
        paths, texts = [Path(p) for p in streams], [Path(p) for p in text_files]
        key = (tuple(map(str, paths)), tuple(map(str, texts)), tuple(queries), top_k, clip_length)
        if key not in self.results:
            video = load_feature_streams(paths)
            rows = [load_feature_rows(p, "last_hidden_state", "text features").numpy() for p in texts]
            inputs = {"video_features": video.numpy(), "text_features": rows[0] if len(rows) == 1 else rows}
            inputs["clip_length"] = clip_length
            self.results[key] = _as_list(self.finder(inputs, query=queries, top_k=top_k))
        return self.results[key]


def _windows(clips: int, config) -> int:
    """How many windows the pipeline runs on a video of ``clips`` clips (`long_video.plan_windows`)."""
    from .long_video import DEFAULT_WINDOW_CLIPS, default_overlap, plan_windows

    return len(plan_windows(clips, DEFAULT_WINDOW_CLIPS, default_overlap(config, DEFAULT_WINDOW_CLIPS)))


def _as_list(result) -> list[dict]:
    return result if isinstance(result, list) else [result]


def table_row(query: str, rank: int, span: dict, score: float) -> list:
    """A row of the tables: seconds to 0.01 and scores to 1e-4, for reading (the JSON keeps them whole)."""
    return [query, rank, round(span["start"], 2), round(span["end"], 2), round(score, 4)]


def result_tables(results: list[dict]) -> tuple[list[list], list[list], list[list], str]:
    """(moments or top-clip rows, saliency rows ``[time, saliency, query]``, top-clip rows, note)."""
    highlight_only = any(result["moments"] is None for result in results)
    clips = [table_row(r["query"], c["rank"], c, c["saliency"]) for r in results for c in r["top_clips"]]
    moments = [
        table_row(r["query"], rank, m, m["score"])
        for r in results
        for rank, m in enumerate(r["moments"] or [], 1)
    ]
    curve = [[(c["start"] + c["end"]) / 2, c["saliency"], r["query"]] for r in results for c in r["saliency"]]
    return (clips if highlight_only else moments), curve, clips, HIGHLIGHT_ONLY_NOTE if highlight_only else ""


def start_of_row(table, event) -> float | None:
    """The start (seconds) of the clicked row of the moments table."""
    row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
    data = table.values.tolist() if hasattr(table, "values") else table["data"]
    return float(data[row][2]) if data and 0 <= row < len(data) else None


def build_app(folder: str | Path):
    """The Gradio Blocks page on the checkpoint in ``folder`` (loaded now; a bad one raises its message)."""
    import gradio as gr
    import pandas as pd

    loaded = {"state": MomentFinder(folder)}  # replaced when the page loads another checkpoint

    def answer(run, progress):
        """Run ``run()`` and lay its results out; a bad input is a message, and the page stays usable."""
        try:
            results = run()
        except (ValueError, OSError) as error:
            message = f"**Error:** {error}".replace("\n", " ")
            gr.Warning(str(error))
            empty = pd.DataFrame(columns=["time", "saliency", "query"])
            return message, None, empty, None, None
        progress(1.0, desc="done")
        moments, curve, clips, note = result_tables(results)
        return (
            note,
            pd.DataFrame(moments, columns=MOMENT_COLUMNS if not note else CLIP_COLUMNS),
            pd.DataFrame(curve, columns=["time", "saliency", "query"]),
            pd.DataFrame(clips, columns=CLIP_COLUMNS),
            results,
        )

    # Gradio fills a gr.Progress default with the page's progress bar (its documented idiom).
    def find_in_video(video, queries, top_k, progress=gr.Progress()):  # noqa: B008
        def run():
            report = lambda fraction, desc: progress(fraction, desc=desc)  # noqa: E731
            return loaded["state"].find_in_video(video, parse_queries(queries), int(top_k), report)

        return answer(run, progress)

    def find_in_features(streams, text, queries, top_k, clip_length, progress=gr.Progress()):  # noqa: B008
        texts = [text] if isinstance(text, str) else text

        def run():
            return loaded["state"].find_in_features(
                streams, texts, parse_queries(queries), int(top_k), float(clip_length)
            )

        return answer(run, progress)

    def seek(table, event: gr.SelectData):
        return start_of_row(table, event)

    def load_checkpoint(name):
        """Load another checkpoint (a folder or a Hub id); one that does not load is a message, and the
        page keeps the one it has."""
        try:
            loaded["state"] = MomentFinder((name or "").strip() or ".")
        except (ValueError, OSError) as error:
            gr.Warning(str(error))
            kept = loaded["state"]
            return (
                f"**Error:** {error} (still on `{kept.folder}`)".replace("\n", " "),
                *_layout(kept.reads_videos),
            )
        state = loaded["state"]
        return describe(state), *_layout(state.reads_videos)

    def _layout(reads_videos: bool):
        return (gr.update(visible=reads_videos), gr.update(visible=not reads_videos),
                gr.update(visible=reads_videos), gr.update(visible=not reads_videos))  # fmt: skip

    state = loaded["state"]
    with gr.Blocks(title="RDMF moment retrieval") as demo:
        gr.Markdown("# RDMF moment retrieval")
        with gr.Row():
            checkpoint_info = gr.Markdown(describe(state), elem_id="rdmf-checkpoint")
            checkpoint = gr.Textbox(
                label="another checkpoint (a folder or a Hub id)", elem_id="rdmf-checkpoint-name"
            )
            load_button = gr.Button("Load", elem_id="rdmf-load")
        with gr.Row():
            with gr.Column(scale=3):
                with gr.Tab("Video", visible=state.reads_videos) as video_tab:
                    video = gr.Video(label="video", sources=["upload"], elem_id="rdmf-player", height=360)
                with gr.Tab("Features", visible=not state.reads_videos) as feature_tab:
                    streams = gr.File(
                        label="clip features (.npy/.npz; several = streams)", file_count="multiple"
                    )
                    text = gr.File(label="text features (.npz last_hidden_state; one, or one per query)", file_count="multiple")  # fmt: skip
                    clip_length = gr.Number(value=2.0, label="seconds per feature row")
            with gr.Column(scale=2):
                queries = gr.Textbox(label="queries (one per line)", lines=3, elem_id="rdmf-queries")
                top_k = gr.Slider(1, 10, value=5, step=1, label="top k")
                video_button = gr.Button("Find moments", variant="primary", elem_id="rdmf-find-video", visible=state.reads_videos)  # fmt: skip
                feature_button = gr.Button("Find moments", variant="primary", elem_id="rdmf-find-features", visible=not state.reads_videos)  # fmt: skip
        message = gr.Markdown(label="message", elem_id="rdmf-message")
        table = gr.Dataframe(
            label="moments (click a row to play it)", interactive=False, elem_id="rdmf-moments"
        )
        curve = gr.LinePlot(x="time", y="saliency", color="query", label="saliency over time (s)")
        clips = gr.Dataframe(label="top clips", interactive=False, elem_id="rdmf-clips")
        with gr.Accordion("results (JSON)", open=False):
            raw = gr.JSON(label="pipeline output")
        seek_time = gr.Number(visible=False)
        outputs = [message, table, curve, clips, raw]
        video_button.click(find_in_video, [video, queries, top_k], outputs, api_name="find_in_video")
        feature_button.click(
            find_in_features,
            [streams, text, queries, top_k, clip_length],
            outputs,
            api_name="find_in_features",
        )
        table.select(seek, [table], seek_time, api_name=False).then(None, seek_time, None, js=SEEK_JS)
        load_button.click(
            load_checkpoint,
            [checkpoint],
            [checkpoint_info, video_tab, feature_tab, video_button, feature_button],
            api_name="load_checkpoint",
        )
    return demo


def describe(state: MomentFinder) -> str:
    """The page's line about its checkpoint."""
    heads = state.finder.model.config.trained_heads
    kind = "videos" if state.reads_videos else "clip features"
    return f"Checkpoint `{state.folder}` (reads {kind}; trained heads: {heads}). One query per line."


def add_app_parser(commands) -> None:
    """``rdmf app``: its arguments, on the ``rdmf`` sub-command parsers."""
    parser = commands.add_parser(
        "app", help="a web page (Gradio) over a checkpoint: video and queries -> moments"
    )
    add_app_arguments(parser)
    parser.set_defaults(handler=run_app)


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        help="a folder with a saved model (and its processor), or a Hub repository id",
    )
    parser.add_argument("--port", type=int, default=7860, help="the local port (default 7860)")
    parser.add_argument(
        "--share", action="store_true", help="also a public gradio.live link (off by default)"
    )


def run_app(args: argparse.Namespace) -> None:
    """Build the page on ``--model`` (a damaged checkpoint is one message) and serve it until interrupted."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ValueError('rdmf app needs gradio: pip install "transformers_rdmf[app]"') from None
    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port: expected a port number from 1 to 65535, got {args.port}")
    build_app(args.model).launch(server_port=args.port, share=args.share)


def main(argv: list[str] | None = None) -> int:
    from .commands import FlagParser
    from .errors import run_command, wants_debug

    parser = FlagParser(prog="python -m transformers_rdmf.app", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    add_app_arguments(parser)
    args = parser.parse_args(argv)
    return run_command("rdmf app", lambda: run_app(args), debug=wants_debug(argv))


if __name__ == "__main__":
    sys.exit(main())
