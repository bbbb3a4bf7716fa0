"""The latent-space explorer: its logic, the notebook widgets, the web server's API (hostile requests
answered 4xx) and the command's clean stop on Ctrl-C."""

from __future__ import annotations

import datetime
import http.client
import io
import json
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import layers as L
from netgraph import NetChain, NetError, NetGraph, NetPort, NormalDistribution, exp
from netgraph.datasets import write_idx
from netgraph.explore import Explorer, load_pictures
from netgraph.explore.server import make_server

ROOT = Path(__file__).resolve().parents[1]
LATENT = 3


def tiny_vae(latent: int = LATENT) -> NetGraph:
    """The structure of examples/mnist_vae.py ("enc", "mn", "sd", "dec"), on 8×8 grey pictures."""
    return NetGraph(
        {
            "enc": NetChain([L.FlattenLayer(), L.LinearLayer(16), "Tanh"]),
            "mn": L.LinearLayer(latent),
            "sd": NetChain([L.LinearLayer(latent), L.ElementwiseLayer(lambda x: 0.5 * x)]),
            "expSd": L.ElementwiseLayer(exp),
            "eps": L.RandomArrayLayer(NormalDistribution(0, 1), output=latent),
            "times": L.ThreadingLayer("Times"),
            "z": L.TotalLayer(),
            "dec": NetChain([L.LinearLayer(16), "Tanh", L.LinearLayer((1, 8, 8)), "LogisticSigmoid"]),
            "loss": L.MeanSquaredLossLayer(),
        },
        [
            (NetPort("Input"), "enc", "mn"),
            ("enc", "sd", "expSd"),
            (["expSd", "eps"], "times"),
            (["mn", "times"], "z", "dec", NetPort("loss", "Input")),
            (NetPort("Input"), NetPort("loss", "Target")),
        ],
        input=(1, 8, 8),
    )


PIXELS = (np.random.default_rng(0).random((6, 8, 8)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def explorer() -> Explorer:
    return Explorer(tiny_vae(), PIXELS)


def png_bytes(size=(10, 10), mode="L", value=200) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, value).save(out, format="PNG")
    return out.getvalue()


def noise_png() -> bytes:
    out = io.BytesIO()
    Image.effect_noise((10, 10), 50).save(out, format="PNG")
    return out.getvalue()


# --- the core -------------------------------------------------------------------------------------------------


def test_a_vae_decodes_samples_encodes_and_interpolates(explorer):
    assert (explorer.latent_size, explorer.image_shape, explorer.can_encode) == (LATENT, (1, 8, 8), True)
    assert len(explorer.images) == 6 and explorer.images.max() <= 1.0
    a, b = explorer.decode([0, 0, 0]), explorer.decode([2, -1, 0.5])
    assert a.shape == (1, 8, 8) and not np.allclose(a, b)
    first, again = explorer.sample(0.7, seed=3), explorer.sample(0.7, seed=3)
    assert np.array_equal(first.z, again.z) and np.allclose(first.picture, explorer.decode(first.z))
    cold = explorer.sample(0.01, seed=3)
    assert np.allclose(cold.z * 70, first.z)  # the temperature scales the prior's deviation
    za, zb = explorer.code_of(0), explorer.code_of(1)
    assert za.shape == (LATENT,) and not np.allclose(za, zb)
    linear, spherical = explorer.strip(za, zb, 5, "lerp"), explorer.strip(za, zb, 5, "slerp")
    assert linear.shape == (5, 1, 8, 8)
    assert np.allclose(linear[0], explorer.decode(za)) and np.allclose(linear[-1], explorer.decode(zb))
    assert not np.allclose(linear[2], spherical[2])
    strip = Image.open(io.BytesIO(explorer.strip_png(za, zb, 4, "linear", scale=2)))
    assert strip.size == (4 * 16 + 5, 16 + 2)  # four pictures at twice their size, borders of 1
    picture = Image.open(io.BytesIO(explorer.decode_png(za, scale=3)))
    assert picture.size == (24, 24) and picture.mode == "L"


def test_a_net_file_and_a_bare_decoder(tmp_path):
    path = tmp_path / "vae.npz"
    vae = tiny_vae()
    vae.save(path)
    from_file = Explorer(path)
    assert from_file.is_vae and from_file.images is None and "vae.npz" in repr(from_file)
    decoder = Explorer(NetChain([L.LinearLayer((3, 4, 5)), "LogisticSigmoid"], input=2))
    assert (decoder.latent_size, decoder.image_shape, decoder.can_encode) == (2, (3, 4, 5), False)
    assert Image.open(io.BytesIO(decoder.decode_png([1, 2]))).mode == "RGB"
    with pytest.raises(NetError, match="cannot encode pictures"):
        decoder.encode(np.zeros((3, 5, 4)))
    with pytest.raises(NetError, match="images are encoded to latent codes, which needs a VAE"):
        Explorer(NetChain([L.LinearLayer((1, 8, 8))], input=2), PIXELS)


@pytest.mark.parametrize(
    ("net", "message"),
    [
        (NetChain([L.LinearLayer(5)], input=2), r"the decoder's output is \(5,\); the explorer needs a picture"),
        (NetChain([L.LinearLayer((2, 4, 4))], input=2), r"output is \(2, 4, 4\).*1 or 3 channels"),
        (NetChain([L.FlattenLayer()], input=(1, 4, 4)), r"input is \(1, 4, 4\); the explorer needs a latent vector"),
        ("no/such/net.npz", "no such file"),
        (42, "expected a net file, a VAE or a decoder net; got a int"),
    ],
)
def test_what_is_not_a_decoder_is_refused(net, message):
    with pytest.raises(NetError, match=message):
        Explorer(net)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1,2", "expected 3 numbers (the latent size); got 2"),
        ([1, 2, 3, 4], "expected 3 numbers (the latent size); got 4"),
        ("", "got 0"),
        ("1,x,2", "'x' (number 2) is not a number"),
        ("1,2,nan", "number 3 is nan, not a finite number"),
        ([1, float("inf"), 0], "number 2 is inf, not a finite number"),
        ("1,2,1e9", "number 3 is 1e+09; each is within ±100"),
        ([[1, 2, 3]], "got an array of shape (1, 3)"),
        ([True, 1, 2], "is not a number"),
    ],
)
def test_a_latent_code_is_checked(explorer, value, message):
    with pytest.raises(NetError, match=re.escape(message)):
        explorer.decode(value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e: e.sample(0), "temperature: expected a number above 0 and at most 10; got 0"),
        (lambda e: e.sample(float("nan")), "temperature: nan is not a finite number"),
        (lambda e: e.sample(1, seed=-1), "seed: expected a whole number from 0 to 4294967295; got -1"),
        (lambda e: e.strip([0] * 3, [1] * 3, 1), "steps: expected a whole number from 2 to 32; got 1"),
        (lambda e: e.strip([0] * 3, [1] * 3, "many"), "steps: expected a whole number from 2 to 32; got 'many'"),
        (lambda e: e.strip([0] * 3, [1] * 2), "b: expected 3 numbers"),
        (lambda e: e.strip([0] * 3, [1] * 3, 4, "cubic"), 'kind: expected "linear" (lerp) or "spherical"'),
        (lambda e: e.code_of(6), "index: expected a whole number from 0 to 5; got 6"),
        (lambda e: e.decode_png([0] * 3, scale=0), "scale: expected a whole number from 1 to 16; got 0"),
        (lambda e: e.read_upload(b"not a picture"), "upload: not a picture Pillow can read"),
        (lambda e: e.read_upload(noise_png()[:-30]), "upload: a damaged picture (image file is truncated)"),
        (lambda e: e.read_upload(png_bytes((5000, 4000))), "upload: a picture of 5000×4000 pixels; at most"),
    ],
)
def test_every_value_from_a_user_is_checked(explorer, call, message):
    with pytest.raises(NetError, match=re.escape(message)):
        call(explorer)


def test_an_upload_is_read_at_the_nets_size_and_colours(explorer):
    picture = explorer.read_upload(png_bytes((30, 20), "RGB", (255, 255, 255)))
    assert picture.shape == (1, 8, 8) and np.allclose(picture, 1.0)
    assert explorer.encode(picture).shape == (LATENT,)


def test_pictures_from_an_idx_file_a_folder_or_an_array(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", PIXELS)
    from_idx = load_pictures(tmp_path / "t10k-images-idx3-ubyte", (1, 8, 8))
    from_folder = load_pictures(tmp_path, (1, 8, 8))  # a folder of MNIST-format files: its test set
    assert np.allclose(from_idx, PIXELS[:, None] / 255.0) and np.array_equal(from_idx, from_folder)
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    Image.new("RGB", (20, 20), (255, 255, 255)).save(pictures / "white.png")
    assert np.allclose(load_pictures(pictures, (1, 8, 8)), 1.0)
    with pytest.raises(NetError, match=r"pictures of shape \(1, 8, 8\); the net's pictures are \(1, 4, 4\)"):
        load_pictures(tmp_path / "t10k-images-idx3-ubyte", (1, 4, 4))
    with pytest.raises(NetError, match="no such file or folder"):
        load_pictures(tmp_path / "missing", (1, 8, 8))
    with pytest.raises(NetError, match="pixels are uint8 or floats; got <U1"):
        load_pictures(np.full((2, 1, 8, 8), "a"), (1, 8, 8))


# --- the notebook widgets ----------------------------------------------------------------------------------


def test_the_widgets_redraw_sample_and_interpolate(explorer):
    pytest.importorskip("ipywidgets", reason="the notebook explorer needs ipywidgets (the notebook extra)")
    from netgraph.explore import explore

    ui = explore(explorer, seed=0)
    before = ui.picture.value
    ui.sliders[1].value = 2.0
    assert ui.picture.value != before and ui.z.tolist() == [0.0, 2.0, 0.0]
    assert ui.picture.value == explorer.decode_png([0, 2, 0], 6)
    ui.sample_button.click()
    assert not np.allclose(ui.z, [0, 2, 0]) and ui.picture.value == explorer.decode_png(ui.z, 6)
    ui.origin_button.click()
    assert ui.z.tolist() == [0.0, 0.0, 0.0]
    strip = ui.strip.value
    ui.kind.value = "spherical"
    assert ui.strip.value != strip
    ui.ends["A"]["index"].value = 4
    assert np.allclose(ui.codes["A"], explorer.code_of(4))
    ui.sliders[0].value = 1.0
    ui.ends["B"]["from_sliders"].click()
    assert ui.codes["B"].tolist() == [1.0, 0.0, 0.0]
    upload = {"name": "x.png", "type": "image/png", "last_modified": datetime.datetime.now()}
    ui.ends["A"]["upload"].value = ({**upload, "size": 9, "content": memoryview(b"not a png")},)
    assert "upload: not a picture Pillow can read" in ui.message.value
    good = png_bytes()
    ui.ends["A"]["upload"].value = ({**upload, "size": len(good), "content": memoryview(good)},)
    assert ui.message.value == "" and np.allclose(ui.codes["A"], explorer.encode(explorer.read_upload(good)))


def test_the_widgets_of_a_bare_decoder_interpolate_between_samples():
    pytest.importorskip("ipywidgets", reason="the notebook explorer needs ipywidgets (the notebook extra)")
    from netgraph.explore import explore

    ui = explore(NetChain([L.LinearLayer((1, 4, 4))], input=2), seed=1)
    assert set(ui.ends["A"]) == {"thumb", "from_sliders"} and ui.strip.value[:4] == b"\x89PNG"
    with pytest.raises(NetError, match="steps: expected a whole number from 2 to 32; got 40"):
        explore(NetChain([L.LinearLayer((1, 4, 4))], input=2), steps=40)


# --- the web server -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(explorer):
    server = make_server(explorer, port=0, upload_limit=100_000, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def fetch(server, path, method="GET", body=None, headers=None):
    """(status, content type, body) of one request; 4xx/5xx come back too."""
    request = urllib.request.Request(server.url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def test_the_api_answers_pictures_and_codes(server, explorer):
    status, kind, page = fetch(server, "")
    assert status == 200 and kind.startswith("text/html") and b"Latent-space explorer" in page
    info = json.loads(fetch(server, "info")[2])
    assert info["latent_size"] == LATENT and info["images"] == 6 and info["can_encode"]
    status, kind, picture = fetch(server, "decode?z=0.5,-1,2&scale=2")
    assert (status, kind) == (200, "image/png") and picture == explorer.decode_png([0.5, -1, 2], 2)
    z = json.loads(fetch(server, "sample?temperature=0.5&seed=7")[2])["z"]
    assert np.allclose(z, explorer.sample(0.5, seed=7).z)
    assert np.allclose(json.loads(fetch(server, "encode?index=2")[2])["z"], explorer.code_of(2))
    assert fetch(server, "picture?index=1")[1] == "image/png"
    strip = fetch(server, "interpolate?a=0,0,0&b=1,1,1&steps=3&kind=slerp")
    assert strip[:2] == (200, "image/png") and Image.open(io.BytesIO(strip[2])).size == (3 * 9 + 1, 10)
    status, _, code = fetch(server, "encode", "POST", png_bytes(), {"Content-Type": "image/png"})
    assert status == 200 and len(json.loads(code)["z"]) == LATENT


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("decode?z=1,2", 400, "z: expected 3 numbers (the latent size); got 2"),
        ("decode?z=1,2,abc", 400, "'abc' (number 3) is not a number"),
        ("decode?z=1,2,nan", 400, "number 3 is nan, not a finite number"),
        ("decode?z=1,-inf,2", 400, "number 2 is -inf, not a finite number"),
        ("decode?z=1,2,1e400", 400, "number 3 is 1e400, not a finite number"),
        ("decode", 400, "/decode needs z"),
        ("decode?z=1,2,3&z=1,2,3", 400, "/decode: z is given 2 times"),
        ("decode?z=1,2,3&evil=1", 400, "/decode takes z, scale; got 'evil'"),
        ("decode?z=1,2,3&scale=1000000", 400, "scale: expected a whole number from 1 to 16"),
        ("decode?%zz", 400, "a malformed query string"),
        ("sample?temperature=-1", 400, "temperature: expected a number above 0"),
        ("sample?seed=1.5", 400, "seed: expected a whole number"),
        ("encode?index=-1", 400, "index: expected a whole number from 0 to 5; got -1"),
        ("picture?index=99999999999999999999", 400, "index: expected a whole number from 0 to 5"),
        ("interpolate?a=0,0,0&b=1,1,1&steps=1000", 400, "steps: expected a whole number from 2 to 32"),
        ("interpolate?a=0,0,0&b=1,1", 400, "b: expected 3 numbers"),
        ("interpolate?a=0,0,0&b=1,1,1&kind=%3Cscript%3E", 400, 'kind: expected "linear"'),
        ("etc/passwd", 404, "no page '/etc/passwd'"),
        ("../../etc/passwd", 404, "no page"),
        ("favicon.ico", 404, "no page '/favicon.ico'"),
    ],
)
def test_hostile_requests_get_a_clear_4xx(server, path, status, message):
    got, kind, body = fetch(server, path)
    assert (got, kind) == (status, "text/plain; charset=utf-8")
    assert message in body.decode() and "Traceback" not in body.decode() and len(body) < 300


def raw(server, text: bytes) -> tuple[int, str]:
    """Sends bytes as they are; the answer's status and first line of body."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.connect()
        connection.sock.sendall(text)
        answer = http.client.HTTPResponse(connection.sock, method="GET")
        answer.begin()
        return answer.status, answer.read().decode().strip()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("request_bytes", "status", "message"),
    [
        (b"PUT /decode HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405, "method PUT not allowed"),
        (b"DELETE / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405, "method DELETE not allowed"),
        (b"BREW / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405, "method BREW not allowed"),
        (b"POST /decode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", 405, "/decode takes GET"),
        (b"POST /nothing HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", 404, "no page '/nothing'"),
        (b"POST /encode HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 411, "uploads need a Content-Length"),
        (b"POST /encode HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411, "no chunked"),
        (b"POST /encode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n", 400, "is not a number of bytes"),
        (b"POST /encode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", 400, "an empty upload"),
        (
            b"POST /encode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 900000000\r\n\r\n",
            413,
            "an upload of 900,000,000 bytes; at most 100,000 are accepted",
        ),
        (b"POST /encode?index=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n\r\nx", 400, "takes no parameters"),
        (b"POST /encode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello", 400, "not a picture"),
        (b"GET /info HTTP/1.1\r\nHost: attacker.example:80\r\n\r\n", 403, "Host 'attacker.example' is not this server"),
        (b"GET /info HTTP/1.1\r\n\r\n", 403, "Host '' is not this server"),
        (b"GET /info HTTP/1.1 HTTP/1.1\r\n\r\n", 400, "Bad request syntax"),
    ],
)
def test_bad_methods_uploads_and_hosts_get_a_clear_4xx(server, request_bytes, status, message):
    got, body = raw(server, request_bytes)
    assert got == status and message in body, body


def test_a_truncated_upload_and_an_oversized_picture(server):
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.putrequest("POST", "/encode")
        connection.putheader("Content-Length", "50")
        connection.endheaders()
        connection.send(b"x" * 10)
        connection.sock.shutdown(1)  # the client stops sending: the server sees 10 of 50 bytes
        answer = connection.getresponse()
        assert answer.status == 400 and "the upload ended after 10 of 50 bytes" in answer.read().decode()
    finally:
        connection.close()
    big = png_bytes((5000, 5000))  # a small file that would unpack to 25 million pixels
    status, _, body = fetch(server, "encode", "POST", big)
    assert len(big) < 100_000 and status == 400 and "at most 16,777,216 pixels are read" in body.decode()


def test_the_server_stays_up_after_hostile_requests(server):
    for path in ("decode?z=1", "decode?z=%00", "sample?temperature=1e999", "nope"):
        assert 400 <= fetch(server, path)[0] < 500
    assert fetch(server, "decode?z=0,0,0")[0] == 200


def test_a_decoder_server_refuses_uploads_and_indices():
    server = make_server(Explorer(NetChain([L.LinearLayer((1, 4, 4))], input=2)), port=0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert fetch(server, "encode", "POST", png_bytes())[2].decode().startswith("this net is a bare decoder")
        status, _, body = fetch(server, "encode?index=0")
        assert status == 400 and "this explorer was given no pictures" in body.decode()
    finally:
        server.shutdown()
        server.server_close()


def test_a_port_in_use_is_a_clear_error(server, explorer):
    with pytest.raises(NetError, match=f"cannot serve on 127.0.0.1:{server.port}"):
        make_server(explorer, port=server.port)
    with pytest.raises(NetError, match="port: a number from 0 to 65535"):
        make_server(explorer, port=70000)


# --- the command ----------------------------------------------------------------------------------------------


def start_command(*words: str) -> tuple[subprocess.Popen, str]:
    """``python -m netgraph.explore WORDS`` and the address it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "netgraph.explore", *words],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()  # the address, once the socket is bound
    assert "http://127.0.0.1:" in line, (line, process.stderr.read() if process.poll() is not None else "")
    return process, line.split(" is at ")[1].split()[0]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_the_command_serves_on_localhost_and_stops_cleanly(tmp_path, stop):
    path = tmp_path / "vae.npz"
    tiny_vae().save(path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", PIXELS)
    process, url = start_command(str(path), "--port", "0", "--images", str(tmp_path))
    try:
        with urllib.request.urlopen(url + "info", timeout=10) as answer:
            assert json.load(answer)["images"] == 6
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        process.send_signal(stop)
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0 and out.strip() == "stopped" and "Traceback" not in err, err
    with pytest.raises(OSError):  # the socket is closed
        urllib.request.urlopen(url + "info", timeout=2)
    make_server(Explorer(tiny_vae()), port=port).server_close()  # the port is free again


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["missing.npz"], "python -m netgraph.explore: missing.npz: no such file"),
        (["NET", "--images", "nowhere"], "images: nowhere: no such file or folder"),
        (["NET", "--port", "99999"], "--port: a number from 0 to 65535; got 99999"),
        (["NET", "--upload-limit", "0"], "--upload-limit"),
    ],
)
def test_the_command_says_what_is_wrong(tmp_path, words, message):
    path = tmp_path / "vae.npz"
    tiny_vae().save(path)
    words = [str(path) if w == "NET" else w for w in words]
    done = subprocess.run(
        [sys.executable, "-m", "netgraph.explore", *words], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode in (1, 2) and message in done.stderr and "Traceback" not in done.stderr, done.stderr
