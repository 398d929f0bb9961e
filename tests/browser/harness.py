"""Shared pieces of the browser tests and the face-step browser benchmark (benchmarks/face_step_browser.py):
fake-webcam feeds made with ffmpeg from the shared face data, the Chromium command line, and serving a
real app over HTTP on 127.0.0.1 (and over https through a TLS-terminating proxy with a throwaway
certificate). No pytest here: the test fixtures (conftest.py) and the benchmark both build on it.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DEEPAUTH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FACES_DIR = Path(os.environ.get("DEEPAUTH_FACES_DIR", ROOT.parent / "shared" / "data" / "faces"))  # as tests/conftest.py

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
]


def chromium_args(feed: Path) -> list[str]:
    """Chromium's arguments for a fake webcam playing (and looping) the Y4M file ``feed``."""
    return CHROMIUM_ARGS + [f"--use-file-for-fake-video-capture={Path(feed).resolve()}"]


def _missing(reason: str):
    raise FileNotFoundError(reason)


# --------------------------------------------------------------------------- feeds

class Feeds:
    """Makes Y4M fake-webcam files (640x480, 15 fps, yuv420p) with ffmpeg, cached per session."""

    W, H, FPS = 640, 480, 15

    def __init__(self, faces: Path, out: Path, missing=None):
        self.faces, self.out = faces, out
        self.missing = missing or _missing  # called with the reason when a source clip is absent

    def _run(self, name: str, inputs: list[str], vf: str, seconds: float) -> Path:
        target = self.out / f"{name}.y4m"
        if target.exists():
            return target
        tmp = target.with_suffix(".part")
        cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *inputs, "-t", str(seconds), "-an",
               "-vf", vf, "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", str(tmp)]
        subprocess.run(cmd, check=True, timeout=180)
        tmp.rename(target)
        return target

    def _fit(self, fps: int | None = None, size: tuple[int, int] | None = None) -> str:
        w, h = size or (self.W, self.H)
        return (f"scale={w}:{h}:force_original_aspect_ratio=decrease,"
                f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,fps={fps or self.FPS},format=yuv420p")

    @staticmethod
    def _noise(seed: int | None) -> str:
        # Temporal sensor-like noise: a real camera never delivers the same pixels twice, and the
        # liveness layer rejects frames whose exact pixels another capture already sent (replays).
        # Use a different seed for every capture made with the same clip.
        return "" if seed is None else f",noise=alls=3:allf=t:all_seed={int(seed)}"

    def clip(self, name: str, seconds: float = 6, start: float = 0, noise_seed: int | None = None,
             fps: int | None = None, size: tuple[int, int] | None = None) -> Path:
        """A talking-head clip from video/liveportrait_driving (e.g. "d9", "d3"), from ``start`` s; ``fps``:
        the camera's frame rate (default 15; a dim room's webcam delivers 5 or fewer); ``size``: the
        camera's picture (default 640x480; the clip is letterboxed into it)."""
        src = self.faces / "video" / "liveportrait_driving" / f"{name}.mp4"
        if not src.is_file():
            self.missing(f"fake-webcam source clip missing: {src}")
        tag = (("" if noise_seed is None else f"-n{noise_seed}") + ("" if fps is None else f"-{fps}fps")
               + ("" if size is None else f"-{size[0]}x{size[1]}"))
        return self._run(f"clip-{name}-{start:g}-{seconds:g}{tag}", ["-ss", str(start), "-i", str(src)],
                         self._fit(fps, size) + self._noise(noise_seed), seconds)

    def frames(self, name: str, count: int = 8, start: float = 0.5, every: float = 0.5) -> list[bytes]:
        """``count`` JPEG frames of a clip (one every ``every`` s from ``start``), as a camera page would send."""
        src = self.faces / "video" / "liveportrait_driving" / f"{name}.mp4"
        out = subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-ss", str(start), "-i", str(src), "-an",
             "-vf", f"fps=1/{every},{self._fit()[:self._fit().rindex(',fps=')]}", "-frames:v", str(count),
             "-q:v", "3", "-f", "image2pipe", "-vcodec", "mjpeg", "-"],
            check=True, capture_output=True, timeout=120).stdout
        parts, i = [], 0
        while True:  # split the MJPEG stream at SOI/EOI markers
            s = out.find(b"\xff\xd8", i)
            if s < 0:
                break
            e = out.find(b"\xff\xd9", s)
            parts.append(out[s:e + 2])
            i = e + 2
        return parts

    def still(self, name: str, at: float = 1.0, seconds: float = 4, noise_seed: int | None = None) -> Path:
        """One frame of a clip held still: a photo of that person in front of the camera."""
        src = self.faces / "video" / "liveportrait_driving" / f"{name}.mp4"
        if not src.is_file():
            self.missing(f"fake-webcam source clip missing: {src}")
        tag = "" if noise_seed is None else f"-n{noise_seed}"
        return self._run(f"still-{name}-{at:g}-{seconds:g}{tag}",
                         ["-ss", str(at), "-i", str(src)],
                         f"select=eq(n\\,0),loop=loop=-1:size=1:start=0,{self._fit()}{self._noise(noise_seed)}",
                         seconds)

    def photo(self, path: Path, seconds: float = 4) -> Path:
        """A still photo held in front of the camera."""
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", str(Path(path).relative_to(self.faces)) if Path(path).is_relative_to(self.faces) else Path(path).name)
        return self._run(f"photo-{stem}-{seconds:g}", ["-loop", "1", "-framerate", str(self.FPS), "-i", str(path)],
                         self._fit(), seconds)

    def _run_graph(self, name: str, inputs: list[str], graph: str, seconds: float) -> Path:
        target = self.out / f"{name}.y4m"
        if target.exists():
            return target
        tmp = target.with_suffix(".part")
        cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[out]",
               "-t", str(seconds), "-an", "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", str(tmp)]
        subprocess.run(cmd, check=True, timeout=300)
        tmp.rename(target)
        return target

    def _segment_vf(self, mirrored: bool, slow: float) -> str:
        """The filters of one segment of a clip (:meth:`sequence`, :meth:`segment_frames`)."""
        return f"{'hflip,' if mirrored else ''}setpts={slow:g}*(PTS-STARTPTS),{self._fit()},setsar=1"

    def segment_frames(self, name: str, start: float, seconds: float, mirrored: bool = False,
                       slow: float = 1.0) -> list[bytes]:
        """The frames (PNG, lossless) of ``seconds`` of a clip from ``start``, as :meth:`sequence` plays a
        segment (640x480, 15 fps, ``mirrored``, ``slow``), without noise: for a feed drawn by the page
        itself (the benchmark's reactive person), which adds its own sensor noise to every frame."""
        src = self.faces / "video" / "liveportrait_driving" / f"{name}.mp4"
        if not src.is_file():
            self.missing(f"fake-webcam source clip missing: {src}")
        target = self.out / f"frames-{name}-{start:g}-{seconds:g}{'m' if mirrored else ''}-x{slow:g}"
        if not target.is_dir():
            tmp = target.with_suffix(".part")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-ss", str(start), "-t", str(seconds),
                            "-i", str(src), "-an", "-vf", f"{self._segment_vf(mirrored, slow)},format=rgb24",
                            str(tmp / "%04d.png")], check=True, timeout=180)
            tmp.rename(target)
        return [f.read_bytes() for f in sorted(target.glob("*.png"))]

    def sequence(self, name: str, parts: list[tuple[float, float, bool]], noise_seed: int | None = None,
                 scale: float = 1.0, pingpong: bool = True, slow: float = 1.0) -> Path:
        """Segments ``(start, seconds, mirrored)`` of a clip played one after the other (a mirrored segment
        next to an unmirrored one does not read as an opposite turn: the dense-landmark yaw of a mirrored
        face against an unmirrored starting pose is meaningless; use clips with real turns). ``pingpong`` appends the reverse (a seamless loop: the
        fake webcam loops the file); ``scale`` < 1 shrinks the picture in the frame (a rescaled replay);
        ``slow`` > 1 plays the clip that many times slower (a turn held a little longer)."""
        src = self.faces / "video" / "liveportrait_driving" / f"{name}.mp4"
        if not src.is_file():
            self.missing(f"fake-webcam source clip missing: {src}")
        inputs, chains = [], []
        for k, (start, seconds, mirrored) in enumerate(parts):
            inputs += ["-ss", str(start), "-t", str(seconds), "-i", str(src)]
            chains.append(f"[{k}:v]{self._segment_vf(mirrored, slow)}[v{k}]")
        n = len(parts)
        graph = ";".join(chains) + ";" + "".join(f"[v{k}]" for k in range(n)) + f"concat=n={n}:v=1:a=0[c]"
        total = sum(p[1] for p in parts) * slow
        if pingpong:
            graph += ";[c]split[f][b];[b]reverse[r];[f][r]concat=n=2:v=1:a=0[c2]"
            total *= 2
        else:
            graph += ";[c]null[c2]"
        w, h = self.W, self.H
        shrink = (f"scale=iw*{scale:g}:ih*{scale:g},pad={w}:{h}:(ow-iw)/2:(oh-ih)/2," if scale != 1 else "")
        graph += f";[c2]{shrink}format=yuv420p{self._noise(noise_seed)}[out]"
        tag = "-".join(f"{a:g}_{b:g}{'m' if m else ''}" for a, b, m in parts)
        label = f"seq-{name}-{tag}-s{scale:g}-x{slow:g}{'-pp' if pingpong else ''}{'' if noise_seed is None else f'-n{noise_seed}'}"
        return self._run_graph(label, inputs, graph, total)

    def turned_print(self, name: str, at: float = 3.0, seconds: float = 8, degrees: float = 40,
                     noise_seed: int | None = None) -> Path:
        """A flat print of one frame turned about its vertical axis, to one side then the other (a
        perspective warp of the still frame, 4 s per cycle): the "tilted print" attack."""
        src = self.faces / "video" / "liveportrait_driving" / f"{name}.mp4"
        if not src.is_file():
            self.missing(f"fake-webcam source clip missing: {src}")
        import math
        k = 1 - math.cos(math.radians(degrees))  # horizontal foreshortening at the full turn
        v = 0.5 * math.sin(math.radians(degrees)) * 0.35  # the far edge's perspective shrink (a ~ 1 m view)
        f = f"sin(2*PI*in/{4 * self.FPS})"
        a, b = f"max({f},0)", f"max(-({f}),0)"
        # sense=destination: the input's corners go to these points (the far edge narrower and shorter)
        persp = (f"perspective=sense=destination:eval=frame:"
                 f"x0='W*{k / 2:.4f}*{b}':y0='H*{v:.4f}*{b}':x1='W-W*{k / 2:.4f}*{a}':y1='H*{v:.4f}*{a}':"
                 f"x2='W*{k / 2:.4f}*{b}':y2='H-H*{v:.4f}*{b}':x3='W-W*{k / 2:.4f}*{a}':y3='H-H*{v:.4f}*{a}'")
        tag = "" if noise_seed is None else f"-n{noise_seed}"
        return self._run(f"print-{name}-{at:g}-{degrees:g}-{seconds:g}{tag}", ["-ss", str(at), "-i", str(src)],
                         f"select=eq(n\\,0),loop=loop=-1:size=1:start=0,{self._fit()},{persp}"
                         f"{self._noise(noise_seed)}", seconds)

    def no_face(self, seconds: float = 4) -> Path:
        """A test pattern: a camera that sees no face."""
        return self._run(f"noface-{seconds:g}",
                         ["-f", "lavfi", "-i", f"testsrc=size={self.W}x{self.H}:rate={self.FPS}"],
                         "format=yuv420p", seconds)


# --------------------------------------------------------------------------- servers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 120, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=10):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except Exception as e:  # noqa: BLE001 - not up yet
            last = e
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout}s: {last}")

def serve(app, port: int) -> tuple[object, threading.Thread]:
    """Serve the WSGI ``app`` on 127.0.0.1:``port`` (werkzeug, threaded) in a daemon thread; returns
    (server, thread): stop with ``server.shutdown()``."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="idp-http", daemon=True)
    thread.start()
    return server, thread


# --------------------------------------------------------------------------- accounts

def create_account(db, config, username: str, password: str, name: str, template=None) -> dict:
    """A new user (the accounts service); with ``template``, also biometric consent, that face template
    and recovery codes, as if the user had enrolled through the webcam. Returns the user document."""
    from idp.accounts import users

    doc = users.create_user(db, username, f"{username}@example.test", password, name=name)
    if template is not None:
        from idp.face.repository import save_template
        from idp.face.template import TemplateCipher
        from idp.faceweb import notice, recovery
        notice.record_consent(db, doc["_id"])
        save_template(db, doc["_id"], template, TemplateCipher(config.template_key))
        recovery.issue_recovery_codes(db, doc["_id"], config.secret_key)
    return doc


def double_click(page, selector: str, post_url: re.Pattern) -> None:
    """A person's double click (real mouse input at the button) while the server is slow to answer: the
    first click's post (to ``post_url``) reaches the server, and its answer reaches the page only after the
    second click (with a fast answer, the second click would land on the next page; with no post sent yet,
    the browser would merge the two submissions into one)."""
    import contextlib

    from playwright.sync_api import Error
    held = []

    def first_post_answered_late(route):
        if held:
            route.continue_()
        else:
            held.append((route, route.fetch(max_redirects=0)))
    page.route(post_url, first_post_answered_late)
    box = page.locator(selector).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.click(x, y)
    for _ in range(600):  # the route handler runs while the page is driven: until the server answered it
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the first click posted nothing"
    page.mouse.click(x, y)
    page.wait_for_timeout(100)  # lets a second submission, if the page allows one, get under way
    for route, response in held:
        with contextlib.suppress(Error):  # the navigation of a post the browser gave up for the second one
            route.fulfill(response=response)


# --------------------------------------------------------------------------- TLS

def self_signed_certificate(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path, str]:
    """A throwaway certificate for the IP address ``host`` (ECDSA P-256, valid one day), written to
    ``folder`` as cert.pem and key.pem. Returns (cert, key, spki): ``spki`` is the base64 SHA-256 of its
    public key, what Chromium's ``--ignore-certificate-errors-spki-list`` takes to trust exactly this key."""
    import base64
    import datetime
    import hashlib
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert_path, key_path, base64.b64encode(hashlib.sha256(spki).digest()).decode()


HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade"}


class TLSProxy:
    """A TLS-terminating reverse proxy on 127.0.0.1:``port`` in front of the http server at ``backend``
    (``http://host:port``), as the provider is deployed: it passes the browser's request on unchanged (its
    Host header too) and adds ``X-Forwarded-For`` (appending the peer's address) and
    ``X-Forwarded-Proto: https``, as nginx's ``proxy_add_x_forwarded_for`` and ``$scheme`` do. Redirects are
    passed back, not followed. ``seen`` lists the headers of each request as the browser sent them (for
    tests of what a browser sends over https) with the provider's answer's ``status``. Stop with ``stop()``."""

    def __init__(self, backend: str, port: int, cert: Path, key: Path, timeout: float = 300):
        import ssl
        from urllib.parse import urlsplit

        from werkzeug.serving import make_server

        target = urlsplit(backend)
        self.target, self.timeout = (target.hostname, target.port), timeout
        self.seen: list[dict] = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self.server = make_server("127.0.0.1", port, self._forward, threaded=True, ssl_context=ctx)
        self.url = f"https://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="tls-proxy", daemon=True)
        self.thread.start()

    def _forward(self, environ, start_response):
        from http.client import HTTPConnection
        from urllib.parse import quote

        from werkzeug.datastructures import EnvironHeaders
        from werkzeug.wsgi import get_input_stream

        sent = {k.lower(): v for k, v in EnvironHeaders(environ).items()}
        record = {"method": environ["REQUEST_METHOD"], "path": environ["PATH_INFO"], "headers": sent, "status": None}
        self.seen.append(record)
        headers = [(k, v) for k, v in EnvironHeaders(environ).items()
                   if k.lower() not in HOP_BY_HOP | {"content-length", "x-forwarded-for", "x-forwarded-proto"}]
        before = environ.get("HTTP_X_FORWARDED_FOR")
        peer = environ.get("REMOTE_ADDR", "")
        headers += [("X-Forwarded-For", f"{before}, {peer}" if before else peer), ("X-Forwarded-Proto", "https")]
        body = get_input_stream(environ).read()
        if body or environ["REQUEST_METHOD"] in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", str(len(body))))
        url = quote(environ.get("PATH_INFO", "/"), safe="!$&'()*+,/:;=@%")
        if environ.get("QUERY_STRING"):
            url += "?" + environ["QUERY_STRING"]
        con = HTTPConnection(*self.target, timeout=self.timeout)
        try:
            con.putrequest(environ["REQUEST_METHOD"], url, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                con.putheader(k, v)
            con.endheaders(body or None)
            resp = con.getresponse()
            data = resp.read()
            record["status"] = resp.status
        finally:
            con.close()
        start_response(f"{resp.status} {resp.reason}",
                       [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP | {"content-length"}]
                       + [("Content-Length", str(len(data)))])
        return [data]

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)
        self.server.server_close()
