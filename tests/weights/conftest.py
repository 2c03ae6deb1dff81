"""A local weights server and a test catalogue that points at it.

The server is Python's ``http.server`` on 127.0.0.1 in a thread, serving files from a folder. It can
close the connection halfway through a file, serve slowly, and counts the requests it gets (per
method and path). Besides plain files (``/files/NAME``) it answers the two requests
``huggingface_hub`` makes for a hub file (``HEAD``/``GET /REPO/resolve/REV/FILE``), with the headers
the hub sends: the commit, the size and, as ``ETag``, the file's SHA-256.

The peers are randomly initialised torchvision / timm models (built once per test session), saved
as the state_dicts their libraries publish.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import math
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TEST_PRE = {"input_size": [3, 64, 64], "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3],
            "interpolation": "bicubic", "crop_pct": 0.8}


class WeightsServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: Counter = Counter()  # (method, path) -> count
        self.cut: set[str] = set()  # file names sent only halfway, then the connection is closed
        self.delay = 0.0  # seconds between 64 KiB blocks
        self.hold: threading.Event | None = None  # when set, file bodies wait for it
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def gets(self, name: str) -> int:
        return sum(n for (method, path), n in self.requests.items()
                   if method == "GET" and path.endswith("/" + name))

    def reset(self) -> None:
        self.requests.clear()
        self.cut.clear()
        self.delay = 0.0
        self.hold = None

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(server: WeightsServer):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _serve(self, body: bool) -> None:
            server.requests[(self.command, self.path)] += 1
            name = self.path.rsplit("/", 1)[-1]
            path = server.root / name
            hub = "/resolve/" in self.path
            if not path.is_file() or not (hub or self.path.startswith("/files/")):
                self._not_found(hub)
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            if hub:
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.end_headers()
            if body:
                self._body(data, name in server.cut)

        def _not_found(self, hub: bool) -> None:
            self.send_response(404)
            if hub:  # what the hub says for a file its repository lacks
                self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _body(self, data: bytes, cut: bool) -> None:
            end = len(data) // 2 if cut else len(data)
            if server.hold is not None:
                server.hold.wait(timeout=120)
            for start in range(0, end, 1 << 16):
                self.wfile.write(data[start:min(start + (1 << 16), end)])
                if server.delay:
                    time.sleep(server.delay)
            self.wfile.flush()
            if cut:
                self.close_connection = True
                self.connection.shutdown(2)

    return Handler


_POOL = torch.randn(1 << 22, generator=torch.Generator().manual_seed(7))  # 4M standard normal values


def _fill_normal(t: torch.Tensor, std: float, seed: int) -> None:
    """``t`` = slices of a fixed pool of normal values times ``std``, from a ``seed``-dependent offset:
    random enough for an oracle test, and a copy (about 10x cheaper than drawing 100M+ values afresh)."""
    flat, n = t.view(-1), _POOL.numel()
    for i, start in enumerate(range(0, flat.numel(), n // 2)):
        length = min(n // 2, flat.numel() - start)
        offset = (seed * 7919 + i * 104729) % (n - length)
        torch.mul(_POOL[offset:offset + length], std, out=flat[start:start + length])


def randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random values of a sensible scale in every floating tensor of the state_dict (running variances
    positive), so that outputs are of order one and a misplaced tensor changes them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        # the state_dict's tensors: not the buffers a model computes (masks, indices)
        for i, (name, t) in enumerate(model.state_dict(keep_vars=True).items()):
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.uniform_(0.5, 1.5, generator=g)
            elif t.ndim >= 2:
                _fill_normal(t.data, 1 / math.sqrt(t[0].numel()), seed + i)
            else:
                t.normal_(1.0 if name.endswith("weight") else 0.0, 0.1, generator=g)
    return model.eval()


INIT_FUNCTIONS = ("uniform_", "normal_", "trunc_normal_", "trunc_normal_tf_", "constant_", "ones_", "zeros_",
                  "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
                  "lecun_normal_", "variance_scaling_")


@contextlib.contextmanager
def no_init():
    """Weight initialisers do nothing while models are built (torch.nn.init's, and the copies timm's,
    torchvision's and cnnlab's model modules hold): :func:`randomise` or a checkpoint overwrites every
    value anyway, and initialising 100M+ parameters is most of the cost of building a big model.
    Buffers that models compute (relative-position indices, attention masks) are still computed."""
    import torch.nn.init as init

    prefixes = ("timm.", "torchvision.models", "cnnlab.models")
    modules = [init, *(m for n, m in list(sys.modules.items()) if n.startswith(prefixes))]
    targets = [(mod, name, fn) for mod in modules for name in INIT_FUNCTIONS
               if callable(fn := getattr(mod, name, None))]
    for mod, name, _ in targets:
        setattr(mod, name, _keep)
    try:
        yield
    finally:
        for mod, name, fn in targets:
            setattr(mod, name, fn)


def _keep(tensor, *args, **kwargs):
    return tensor


def peer_model(spec: str, **kw) -> torch.nn.Module:
    """A randomly initialised peer (``torchvision:NAME`` or ``timm:NAME``)."""
    lib, name = spec.split(":", 1)
    if lib == "timm":
        import timm

        build = timm.create_model
    else:
        import torchvision

        build = torchvision.models.get_model
    with no_init():
        model = build(name, **kw)
    return randomise(model)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """The server and its files: a torchvision mobilenet_v2 and a timm mobilenetv1_100 state_dict."""
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("served")
    peers = {"tv": peer_model("torchvision:mobilenet_v2"), "timm": peer_model("timm:mobilenetv1_100")}
    torch.save(peers["tv"].state_dict(), root / "mobilenet_v2-test.pth")
    (root / "cut.pth").write_bytes((root / "mobilenet_v2-test.pth").read_bytes())
    timm_sd = {k: v.contiguous() for k, v in peers["timm"].state_dict().items()}
    save_file(timm_sd, str(root / "model.safetensors"))
    torch.save(peers["timm"].state_dict(), root / "pytorch_model.bin")
    server = WeightsServer(root)
    yield server, peers
    server.close()


def make_test_catalogue(server: WeightsServer) -> dict:
    """Entries for the served files (tags test_*), in the catalogue's JSON form."""
    root, url = server.root, server.url
    tv = {"peer": "torchvision:mobilenet_v2", "preprocessing": TEST_PRE}
    hf = {"model": "mobilenet_v1", "peer": "timm:mobilenetv1_100", "preprocessing": TEST_PRE}
    good = sha256(root / "mobilenet_v2-test.pth")
    entries = [
        {"model": "mobilenet_v2", "tag": "test_tv", "sha256": good,
         "source": {"kind": "url", "url": f"{url}/files/mobilenet_v2-test.pth"}, **tv},
        {"model": "mobilenet_v2", "tag": "test_prefix", "sha256_prefix": good[:8],
         "source": {"kind": "url", "url": f"{url}/files/mobilenet_v2-test.pth"}, **tv},
        {"model": "mobilenet_v2", "tag": "test_cut", "source": {"kind": "url", "url": f"{url}/files/cut.pth"},
         "sha256": good, **tv},
        {"model": "mobilenet_v2", "tag": "test_cut_nohash",
         "source": {"kind": "url", "url": f"{url}/files/cut.pth"}, **tv},
        {"model": "mobilenet_v2", "tag": "test_badhash", "sha256": "0" * 64,
         "source": {"kind": "url", "url": f"{url}/files/mobilenet_v2-test.pth"}, **tv},
        {"model": "mobilenet_v2", "tag": "test_down", "sha256": good,
         "source": {"kind": "url", "url": "http://127.0.0.1:9/files/mobilenet_v2-test.pth"}, **tv},
        {"tag": "test_hf", "source": {"kind": "hf", "repo": "timm/test_mobilenet", "endpoint": url,
                                      "files": ["model.safetensors", "pytorch_model.bin"]}, **hf},
        {"tag": "test_hf_bin", "source": {"kind": "hf", "repo": "timm/test_mobilenet", "endpoint": url,
                                          "files": ["missing.safetensors", "pytorch_model.bin"]}, **hf},
    ]
    return {"entries": entries}


@pytest.fixture
def weights_env(served, tmp_path, monkeypatch):
    """A fresh cache ($CNNLAB_HOME) and the test catalogue ($CNNLAB_WEIGHTS_CATALOGUE) for one test;
    returns (server, peers, env) - env for subprocesses."""
    server, peers = served
    server.reset()
    cat = tmp_path / "catalogue.json"
    cat.write_text(json.dumps(make_test_catalogue(server)))
    env = {"CNNLAB_HOME": str(tmp_path / "home"), "CNNLAB_WEIGHTS_CATALOGUE": str(cat)}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("CNNLAB_OFFLINE", raising=False)
    return server, peers, env
