"""Download once, verify, cache, convert, reuse offline: against a local HTTP server (no internet).

Oracles: the randomly initialised torchvision / timm peer whose state_dict the server serves (the
cached weights must give its outputs), the server's request counter (the second use makes no
request), the files left on disk (nothing after a failure), and hashes computed here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
import torch
from PIL import Image
from safetensors import safe_open

import cnnlab
from cnnlab.cli.main import main
from cnnlab.errors import CnnlabError
from cnnlab.weights import imagenet_classes
from cnnlab.weights.cache import cached_file, read_pins, weights_dir

from .conftest import TEST_PRE, sha256

X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))


def leftovers() -> list[str]:
    """Everything under the cache's weights folder except the lock files."""
    root = weights_dir()
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and ".locks" not in p.parts)


def assert_same_outputs(peer, model) -> None:
    with torch.no_grad():
        want, got = peer(X), model.eval()(X)
    assert want.std() > 1e-2 and (want - got).abs().max().item() <= 1e-5


def test_url_download_verifies_caches_and_is_not_repeated(weights_env):
    server, peers, _ = weights_env
    model = cnnlab.create_model("mobilenet_v2", weights="test_tv")
    assert_same_outputs(peers["tv"], model)
    assert model.default_cfg.to_dict() == {**TEST_PRE, "input_size": (3, 64, 64), "mean": (0.5, 0.4, 0.3),
                                           "std": (0.2, 0.25, 0.3)}
    assert model.class_names == imagenet_classes()
    assert server.gets("mobilenet_v2-test.pth") == 1
    path = cached_file("mobilenet_v2", "test_tv")
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
    served = server.root / "mobilenet_v2-test.pth"
    assert meta["source_sha256"] == sha256(served) and meta["source_size"] == str(served.stat().st_size)
    assert meta["weights"] == "mobilenet_v2:test_tv"
    assert meta["source"].endswith("/files/mobilenet_v2-test.pth")
    assert json.loads(meta["classes"])[0] == "tench"
    assert read_pins()[meta["source"]]["sha256"] == sha256(served)
    assert leftovers() == ["known_files.json", "mobilenet_v2/test_tv.safetensors"]
    again = cnnlab.create_model("mobilenet_v2", weights="test_tv")  # from the cache: no request at all
    assert_same_outputs(peers["tv"], again)
    assert sum(server.requests.values()) == 1


def test_prefix_hash_as_torchvision_publishes_it(weights_env):
    server, peers, _ = weights_env
    assert_same_outputs(peers["tv"], cnnlab.create_model("mobilenet_v2", weights="test_prefix"))


@pytest.mark.parametrize("tag, files", [("test_hf", ["model.safetensors"]),
                                        ("test_hf_bin", ["missing.safetensors", "pytorch_model.bin"])])
def test_hub_download_through_huggingface_hub(weights_env, tag, files):
    pytest.importorskip("huggingface_hub")
    server, peers, _ = weights_env
    model = cnnlab.create_model("mobilenet_v1", weights=tag)
    assert_same_outputs(peers["timm"], model)
    assert model.default_cfg.input_size == (3, 64, 64)
    assert server.gets(files[-1]) == 1
    heads = [path.rsplit("/", 1)[-1] for (method, path) in server.requests if method == "HEAD"]
    assert set(files) <= set(heads)  # the hub's metadata (size, SHA-256) is asked for first
    assert leftovers() == ["known_files.json", f"mobilenet_v1/{tag}.safetensors"]
    before = sum(server.requests.values())
    cnnlab.create_model("mobilenet_v1", weights=tag)
    assert sum(server.requests.values()) == before


@pytest.mark.parametrize("tag, match", [("test_cut", "wrong SHA-256"),
                                        ("test_cut_nohash", "truncated or corrupt")])
def test_connection_closed_mid_file_leaves_nothing(weights_env, tag, match):
    server, _, _ = weights_env
    server.cut.add("cut.pth")
    with pytest.raises(CnnlabError, match=match):
        cnnlab.create_model("mobilenet_v2", weights=tag)
    assert server.gets("cut.pth") == 1
    assert leftovers() == []


def test_hub_connection_closed_mid_file_leaves_nothing(weights_env, monkeypatch):
    hub = pytest.importorskip("huggingface_hub.file_download")
    server, _, _ = weights_env
    monkeypatch.setattr(hub.time, "sleep", lambda s: None)  # huggingface_hub pauses 1 s before each retry
    server.cut.add("model.safetensors")
    with pytest.raises(CnnlabError, match="cannot download mobilenet_v1:test_hf"):
        cnnlab.create_model("mobilenet_v1", weights="test_hf")
    assert leftovers() == []


def test_wrong_hash_is_refused_and_removed(weights_env):
    with pytest.raises(CnnlabError, match=r"wrong SHA-256 for mobilenet_v2-test.pth: it is [0-9a-f]{64}, the "
                                          r"catalogue expects 0{64}; the file was refused and removed"):
        cnnlab.create_model("mobilenet_v2", weights="test_badhash")
    assert leftovers() == []


def test_a_changed_file_at_the_source_is_refused(weights_env, tmp_path):
    """The first download's hash is recorded; a later download of the same file must match it."""
    server, _, env = weights_env
    cnnlab.create_model("mobilenet_v2", weights="test_prefix")
    from cnnlab.weights import hub

    hub.remove_weights(["mobilenet_v2:test_prefix"])
    pins = read_pins()
    url = f"{server.url}/files/mobilenet_v2-test.pth"
    pins[url]["sha256"] = sha256(server.root / "mobilenet_v2-test.pth")[:8] + "f" * 56  # as if it had changed
    (weights_dir() / "known_files.json").write_text(json.dumps(pins))
    with pytest.raises(CnnlabError, match=r"its first download \(.*\) had"):
        cnnlab.create_model("mobilenet_v2", weights="test_prefix")
    assert leftovers() == ["known_files.json"]


def test_offline_error_is_one_line_with_the_fix(weights_env, capsys):
    image = weights_dir().parent / "x.png"
    image.parent.mkdir(parents=True)
    Image.new("RGB", (40, 30)).save(image)
    assert main(["predict", "mobilenet_v2", str(image), "--weights", "test_down"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnlab: error: cannot download mobilenet_v2:test_down")
    for part in ("http://127.0.0.1:9/files/mobilenet_v2-test.pth", "save it as mobilenet_v2-test.pth",
                 f"sha256 {sha256_of_served(weights_env)}",
                 "cnnlab weights import mobilenet_v2-test.pth --model mobilenet_v2 --tag test_down"):
        assert part in lines[0], (part, lines[0])


def sha256_of_served(weights_env) -> str:
    return sha256(weights_env[0].root / "mobilenet_v2-test.pth")


def test_offline_switch_makes_no_request(weights_env, monkeypatch):
    server, _, _ = weights_env
    monkeypatch.setenv("CNNLAB_OFFLINE", "1")
    with pytest.raises(CnnlabError, match=r"\$CNNLAB_OFFLINE is set\); without internet"):
        cnnlab.create_model("mobilenet_v2", weights="test_tv")
    assert not server.requests and leftovers() == []


def test_two_processes_fetch_one_file_once(weights_env):
    """This process starts fetching; the server holds its download until a second process has said it
    is about to load (so it finds no cached file and waits on the lock); one GET, two good models."""
    server, peers, env = weights_env
    server.hold = threading.Event()
    code = ("import cnnlab, torch; print('loading', flush=True); "
            "m = cnnlab.create_model('mobilenet_v2', weights='test_tv').eval(); "
            "torch.manual_seed(3); print(float(m(torch.randn(2, 3, 64, 64)).sum().detach()))")
    here: dict = {}
    fetcher = threading.Thread(target=lambda: here.setdefault("model", cnnlab.create_model("mobilenet_v2",
                                                                                           weights="test_tv")))
    fetcher.start()
    other = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, **env})
    try:
        assert other.stdout.readline().strip() == "loading"
        deadline = time.monotonic() + 120
        while not server.gets("mobilenet_v2-test.pth") and time.monotonic() < deadline:
            time.sleep(0.05)  # until one of the two is in its download (holding the lock)
        time.sleep(1.0)  # the other process meanwhile finds no cached file and waits for the lock
    finally:
        server.hold.set()
    fetcher.join(timeout=300)
    out, err = other.communicate(timeout=300)
    assert other.returncode == 0, err
    assert server.gets("mobilenet_v2-test.pth") == 1
    assert leftovers() == ["known_files.json", "mobilenet_v2/test_tv.safetensors"]
    assert_same_outputs(peers["tv"], here["model"])
    torch.manual_seed(3)
    with torch.no_grad():
        want = float(peers["tv"](torch.randn(2, 3, 64, 64)).sum())
    assert abs(float(out) - want) <= 1e-4 * max(1.0, abs(want))
