"""``rdmf app``: the Gradio page gives what the pipeline gives (through gradio_client, on a tiny random CLIP
checkpoint with the example video and on the shipped TVSum checkpoint with its features), bad input is a
message in the page, and in a real headless Chromium a click on a moment seeks the player to its start.

Without gradio (or Chromium for the browser test) these skip with the reason, except under ``CI=true``
where that is a failure."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
if IN_CI:
    import gradio  # noqa: F401  (CI installs the test extra: a missing gradio is a failure)
else:
    pytest.importorskip("gradio")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from gradio_client import Client, handle_file  # noqa: E402
from transformers import pipeline  # noqa: E402

from transformers_rdmf import VideoMomentRetrievalPipeline  # noqa: E402
from transformers_rdmf.app import MomentFinder, build_app  # noqa: E402
from transformers_rdmf.cli import main as rdmf_main  # noqa: E402
from transformers_rdmf.commands.predict import load_feature_rows, load_feature_streams  # noqa: E402

from .test_processing_rdmf import save_tiny_video_checkpoint  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TVSUM_CHECKPOINT = REPO / "examples" / "rdmf-tvsum-GA"
TVSUM = REPO / "examples" / "tvsum"
STREAMS = [TVSUM / "Bhxk-O1Y7Ho_rgb.npy", TVSUM / "Bhxk-O1Y7Ho_opt.npy"]
TITLE = TVSUM / "Bhxk-O1Y7Ho_title.npz"
QUERIES = ["a person opens the door", "someone sits on the sofa"]
SECONDS, SCORES = 1e-4, 1e-6
CHROMIUMS = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")  # Debian's real binary first (its
# /usr/bin/chromium is a shell wrapper), then whichever is on PATH


@pytest.fixture(scope="module")
def charades(shared_data):
    return shared_data / "examples" / "charades.mp4"


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    return save_tiny_video_checkpoint(tmp_path_factory.mktemp("app_video_checkpoint"))[2]


def launched(folder):
    """The page on ``folder``, served on a free local port, and its URL."""
    demo = build_app(folder)
    demo.launch(prevent_thread_lock=True, quiet=True)
    return demo, demo.local_url


@pytest.fixture(scope="module")
def highlight_folder(tmp_path_factory):
    """The tiny video checkpoint marked highlight-only: its table lists top clips, whose starts differ
    (the random moment head proposes one span for every query, which could not tell rows apart)."""
    model, processor, folder = save_tiny_video_checkpoint(tmp_path_factory.mktemp("app_highlight_checkpoint"))
    model.config.trained_heads = ["saliency"]
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def highlight_app(highlight_folder):
    demo, url = launched(highlight_folder)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def video_app(video_folder):
    demo, url = launched(video_folder)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def feature_app():
    demo, url = launched(TVSUM_CHECKPOINT)
    yield url
    demo.close()


def direct_pipeline(folder):
    return pipeline("video-moment-retrieval", model=str(folder), pipeline_class=VideoMomentRetrievalPipeline)


def assert_close_rows(got: list[dict], expected: list[dict], keys: tuple[str, ...], rounded: bool = False):
    """Equal rows to the tolerances; ``rounded``: the tables' (seconds to 0.01, scores to 1e-4)."""
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected):
        for key in keys:
            tolerance = SECONDS if key in ("start", "end") else SCORES
            tolerance += (0.005 if key in ("start", "end") else 5e-5) if rounded else 0
            assert abs(a[key] - b[key]) <= tolerance, (key, a, b)


def assert_same_results(got: list[dict], expected: list[dict]):
    assert [r["query"] for r in got] == [r["query"] for r in expected]
    for a, b in zip(got, expected):
        if b["moments"] is None:
            assert a["moments"] is None
        else:
            assert_close_rows(a["moments"], b["moments"], ("start", "end", "score"))
        assert_close_rows(a["saliency"], b["saliency"], ("start", "end", "saliency"))
        assert_close_rows(a["top_clips"], b["top_clips"], ("start", "end", "saliency"))


def table_rows(table: dict) -> list[dict]:
    return [dict(zip(table["headers"], row)) for row in table["data"]]


def test_the_video_endpoint_equals_the_pipeline(video_app, video_folder, charades):
    client = Client(video_app, verbose=False)
    note, table, _, clips, results = client.predict(
        handle_file(str(charades)), "\n".join(QUERIES), 5, api_name="/find_in_video"
    )
    expected = direct_pipeline(video_folder)(str(charades), query=QUERIES, top_k=5)
    assert note == ""
    assert_same_results(results, expected)
    rows = table_rows(table)  # the moments table: every query's moments, ranked
    assert [(r["query"], r["rank"]) for r in rows] == [
        (e["query"], rank) for e in expected for rank in range(1, len(e["moments"]) + 1)
    ]
    assert_close_rows(
        rows, [m for e in expected for m in e["moments"]], ("start", "end", "score"), rounded=True
    )
    top = [c for e in expected for c in e["top_clips"]]
    assert_close_rows(table_rows(clips), top, ("start", "end", "saliency"), rounded=True)


def test_the_feature_endpoint_equals_the_pipeline_and_shows_top_clips(feature_app):
    client = Client(feature_app, verbose=False)
    streams = [handle_file(str(path)) for path in STREAMS]
    note, table, _, _, results = client.predict(
        streams, [handle_file(str(TITLE))], "grooming a dog", 5, 2.0, api_name="/find_in_features"
    )
    inputs = {
        "video_features": load_feature_streams(STREAMS).numpy(),
        "text_features": load_feature_rows(TITLE, "last_hidden_state").numpy(),
    }
    expected = direct_pipeline(TVSUM_CHECKPOINT)(inputs, query="grooming a dog", top_k=5)
    assert len(expected["saliency"]) == 225 and expected["moments"] is None
    assert_same_results(results, [expected])
    assert "highlight-only" in note  # the moment head was not trained: the table holds the top clips
    assert_close_rows(table_rows(table), expected["top_clips"], ("start", "end", "saliency"), rounded=True)


def test_bad_input_is_a_message_and_the_page_stays_usable(feature_app, video_app, tmp_path):
    features, video = Client(feature_app, verbose=False), Client(video_app, verbose=False)
    title = [handle_file(str(TITLE))]
    narrow = features.predict(
        [handle_file(str(STREAMS[0]))], title, "a dog", 5, 2.0, api_name="/find_in_features"
    )
    assert narrow[0].startswith("**Error:**") and "1024" in narrow[0] and "2048" in narrow[0]
    empty = features.predict([handle_file(str(p)) for p in STREAMS], title, " \n ", 5, 2.0, api_name="/find_in_features")  # fmt: skip
    assert "write at least one query" in empty[0] and empty[4] is None
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("not a video\n")
    bad = video.predict(handle_file(str(not_a_video)), "a door", 5, api_name="/find_in_video")
    assert "is not a readable video" in bad[0]
    wrong_kind = features.predict(handle_file(str(not_a_video)), "a door", 5, api_name="/find_in_video")
    assert "this checkpoint reads clip features" in wrong_kind[0]
    good = features.predict([handle_file(str(p)) for p in STREAMS], title, "a dog", 3, 2.0, api_name="/find_in_features")  # fmt: skip
    assert good[0].startswith("This checkpoint") and len(good[4][0]["top_clips"]) == 3  # still usable


def test_asking_the_same_again_does_not_run_the_pipeline_again():
    state = MomentFinder(TVSUM_CHECKPOINT)
    calls, pipeline_call = [], state.finder

    def counted(*args, **kwargs):
        calls.append(kwargs["query"])
        return pipeline_call(*args, **kwargs)

    state.finder = counted
    first = state.find_in_features(STREAMS, [TITLE], ["a dog", "a groomer"], 5, 2.0)
    again = state.find_in_features(STREAMS, [TITLE], ["a dog", "a groomer"], 5, 2.0)
    other = state.find_in_features(STREAMS, [TITLE], ["a dog"], 5, 2.0)
    assert calls == [["a dog", "a groomer"], ["a dog"]]  # one call per new (files, queries, top k)
    assert again is first and [r["query"] for r in first] == ["a dog", "a groomer"]
    assert other[0]["saliency"] == first[0]["saliency"]  # one text file: the same features for each query


def test_importing_the_package_and_its_commands_does_not_import_gradio():
    code = "import sys, transformers_rdmf.app, transformers_rdmf.cli; print('gradio' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    printed = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert printed.stdout.strip() == "False"


def test_a_damaged_checkpoint_is_one_message(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{not json")
    assert rdmf_main(["app", "--model", str(tmp_path)]) == 2
    printed = capsys.readouterr().err
    assert "rdmf app: error:" in printed and "not valid JSON" in printed and "Traceback" not in printed


@pytest.mark.parametrize("port", ["0", "99999", "-1"])
def test_a_port_out_of_range_is_one_message(port, capsys):
    assert rdmf_main(["app", "--model", str(TVSUM_CHECKPOINT), "--port", port]) == 2
    printed = capsys.readouterr().err
    assert f"rdmf app: error: --port: expected a port number from 1 to 65535, got {port}" in printed
    assert "Traceback" not in printed


def chromium_driver():
    """A headless Chromium through Selenium; skipped (failed under CI) where it is absent."""
    chromium = next((shutil.which(name) for name in CHROMIUMS if shutil.which(name)), None)
    if shutil.which("chromedriver") is None or chromium is None:
        reason = f"Chromium and chromedriver are needed (one of {CHROMIUMS}, and chromedriver, on PATH)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1700"):
        options.add_argument(flag)
    options.add_argument("--autoplay-policy=no-user-gesture-required")
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = chromium_driver()
    yield driver
    driver.quit()


def upload_and_find(driver, url: str, video: Path, query: str):
    """Load the page, upload ``video``, type ``query`` and press the button; returns the press time."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, 60)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#rdmf-player input[type=file]"))
    driver.find_element(By.CSS_SELECTOR, "#rdmf-player input[type=file]").send_keys(str(video))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#rdmf-player video"))
    driver.find_element(By.CSS_SELECTOR, "#rdmf-queries textarea").send_keys(query)
    pressed = time.perf_counter()
    driver.find_element(By.CSS_SELECTOR, "#rdmf-find-video").click()
    return pressed


def test_clicking_a_row_seeks_the_player_in_chromium(
    browser, highlight_app, highlight_folder, charades, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    expected = direct_pipeline(highlight_folder)(str(charades), query=QUERIES[0], top_k=5)["top_clips"]
    assert abs(expected[1]["start"] - expected[0]["start"]) >= 2.0  # rows 1 and 2 seek to different times
    pressed = upload_and_find(browser, highlight_app, charades, QUERIES[0])
    rows = "#rdmf-moments [role=row].virtual-row"  # Gradio 6's table: rows of grid cells
    WebDriverWait(browser, 120).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, rows)) == len(expected))
    print(f"\nbutton to table in Chromium: {time.perf_counter() - pressed:.2f} s")
    assert "highlight-only" in browser.find_element(By.ID, "rdmf-message").text
    listen = "const v = document.querySelector('#rdmf-player video'); window.__seeked = null;"
    listen += "v.addEventListener('seeked', () => { window.__seeked = v.currentTime; }, {once: true});"
    browser.execute_script(listen)
    browser.find_element(By.CSS_SELECTOR, '#rdmf-moments [data-testid="cell-1-2"]').click()  # row 2, start
    seeked = WebDriverWait(browser, 30).until(lambda d: d.execute_script("return window.__seeked;"))
    assert abs(seeked - expected[1]["start"]) <= 0.1
    screenshot = Path(os.environ.get("RDMF_SCREENSHOT_DIR") or tmp_path) / "app.png"  # docs: docs/images
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_bad_upload_shows_its_message_in_chromium(browser, video_app, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("not a video\n")
    upload_and_find(browser, video_app, not_a_video, "a door")
    message = WebDriverWait(browser, 60).until(
        lambda d: (
            "not a readable video" in d.find_element(By.ID, "rdmf-message").text
            and d.find_element(By.ID, "rdmf-message").text
        )
    )
    assert message.startswith("Error:") and "notes.mp4" in message


def test_a_video_is_embedded_once_per_upload_whatever_the_queries(video_folder, charades):
    state = MomentFinder(video_folder)
    embeds, embed = [], state.finder.embed_video
    state.finder.embed_video = lambda video: embeds.append(video) or embed(video)
    first = state.find_in_video(str(charades), ["a person opens the door"], 5)
    other = state.find_in_video(str(charades), ["someone sits on the sofa", "a person opens the door"], 5)
    assert embeds == [str(charades)]  # new queries reuse the upload's clip features
    # the same features and query through the same code: exact
    assert other[1] == first[0]
    expected = direct_pipeline(video_folder)(str(charades), query="someone sits on the sofa", top_k=5)
    assert_same_results([other[0]], [expected])  # the stored features give the path's results


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_space_folder_runs_the_app_unchanged(tmp_path):
    """``publish.py --space``'s folder: its README is a Space header, and ``python app.py`` there serves the
    page from the folder's own copy of the library, giving the pipeline's results."""
    import yaml

    from transformers_rdmf.hub import PublishError, write_space

    space = write_space(TVSUM_CHECKPOINT, tmp_path / "space")
    header = yaml.safe_load((space / "README.md").read_text().split("---")[1])
    assert (header["sdk"], header["app_file"], header["sdk_version"]) == ("gradio", "app.py", "6.31.0")
    assert "gradio==6.31.*" in (space / "requirements.txt").read_text().splitlines()
    env = {**os.environ, "PYTHONPATH": "", "GRADIO_SERVER_PORT": str(free_port()), "GRADIO_ANALYTICS_ENABLED": "False"}  # fmt: skip
    where = subprocess.run([sys.executable, "-c", "import transformers_rdmf; print(transformers_rdmf.__file__)"],
                           cwd=space, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert where.stdout.strip() == str(space / "transformers_rdmf" / "__init__.py")  # the Space's own copy
    server = subprocess.Popen([sys.executable, "app.py"], cwd=space, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{env['GRADIO_SERVER_PORT']}/"
        client = _client_when_up(url, server)
        streams = [handle_file(str(path)) for path in STREAMS]
        _, _, _, _, results = client.predict(
            streams, [handle_file(str(TITLE))], "grooming a dog", 5, 2.0, api_name="/find_in_features"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    inputs = {
        "video_features": load_feature_streams(STREAMS).numpy(),
        "text_features": load_feature_rows(TITLE, "last_hidden_state").numpy(),
    }
    assert_same_results(results, [direct_pipeline(TVSUM_CHECKPOINT)(inputs, query="grooming a dog", top_k=5)])
    with pytest.raises(PublishError, match="is not empty"):
        write_space(TVSUM_CHECKPOINT, space)
    with pytest.raises(PublishError, match="would overwrite checkpoint"):
        write_space(TVSUM_CHECKPOINT, TVSUM_CHECKPOINT / "space")


def _client_when_up(url: str, server: subprocess.Popen, timeout: float = 180.0) -> Client:
    """A client once the server answers (the Space's process imports torch and loads the checkpoint)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"app.py exited with {server.returncode}: {server.stdout.read()[-3000:]}")
        try:
            return Client(url, verbose=False)
        except Exception:  # not listening yet
            time.sleep(1.0)
    raise AssertionError(f"app.py did not answer at {url} within {timeout:.0f} s")


def test_a_hub_id_is_downloaded_first_and_an_unreachable_one_is_a_message(monkeypatch, capsys):
    import huggingface_hub

    from transformers_rdmf.app import checkpoint_folder

    asked = []
    monkeypatch.setattr(
        huggingface_hub, "snapshot_download", lambda repo_id: asked.append(repo_id) or str(TVSUM_CHECKPOINT)
    )
    assert checkpoint_folder("someone/rdmf-tvsum") == TVSUM_CHECKPOINT and asked == ["someone/rdmf-tvsum"]
    assert MomentFinder("someone/rdmf-tvsum").finder.model.config.trained_heads == ["saliency"]

    def offline(repo_id):
        raise OSError("the Hub cannot be reached")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    assert rdmf_main(["app", "--model", "someone/missing"]) == 2
    err = capsys.readouterr().err
    assert "rdmf app: error: --model: someone/missing is neither a folder nor a Hub repository" in err
    assert "Traceback" not in err


def test_a_checkpoint_that_does_not_load_is_a_message_in_the_page(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(TVSUM_CHECKPOINT, broken)
    (broken / "config.json").write_text('{"hidden_size": 32,')  # truncated
    demo, url = launched(TVSUM_CHECKPOINT)
    try:
        client = Client(url, verbose=False)
        info = first_output(client.predict(str(broken), api_name="/load_checkpoint"))
        assert info.startswith("**Error:**") and "config.json: not valid JSON" in info
        assert f"still on `{TVSUM_CHECKPOINT}`" in info
        streams = [handle_file(str(path)) for path in STREAMS]
        still = client.predict(
            streams, [handle_file(str(TITLE))], "a dog", 3, 2.0, api_name="/find_in_features"
        )
        assert len(still[4][0]["top_clips"]) == 3  # the page kept working on its checkpoint
        info = first_output(client.predict(str(TVSUM_CHECKPOINT), api_name="/load_checkpoint"))
        assert info.startswith(f"Checkpoint `{TVSUM_CHECKPOINT}` (reads clip features")
    finally:
        demo.close()


def first_output(result):
    """The message of an endpoint whose other outputs are layout updates (the client may leave them out)."""
    return result[0] if isinstance(result, (list, tuple)) else result
