"""The explorer's web page: one HTML file with its script, served at ``/`` by :mod:`netgraph.explore.server`.

The page asks ``/info`` for the latent size, builds a slider per dimension and redraws the decoded picture
(``/decode``) as a slider moves, one request at a time (a request asked for while one is in flight is sent
when it returns, with the newest position). "sample" asks ``/sample`` for a code and moves the sliders to it.
The interpolation strip (``/interpolate``) runs between two codes A and B: the codes of two of the server's
pictures chosen by number (``/encode?index=``), of uploaded pictures (``POST /encode``), or of the sliders.

Opened with ``#test-move``, the page checks itself once it has drawn: it moves the first slider as a user
would (an ``input`` event), waits for the new picture, and writes the pixel hashes before and after into
``<pre id="test-result">`` as JSON; the browser test reads it with ``chromium --dump-dom``.
"""

from __future__ import annotations

__all__ = ["PAGE"]

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>netgraph latent-space explorer</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 18px; color: #222; max-width: 980px; }
  h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 18px 0 6px; }
  #net { color: #666; font-size: 13px; margin-bottom: 12px; }
  .px { image-rendering: pixelated; image-rendering: crisp-edges; background: #eee; border: 1px solid #ccc; }
  .row { display: flex; gap: 18px; align-items: flex-start; flex-wrap: wrap; }
  #sliders { display: grid; grid-template-columns: 36px 240px 52px; gap: 2px 8px; align-items: center; }
  #sliders span { font-variant-numeric: tabular-nums; font-size: 13px; }
  .controls { margin: 10px 0; display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
  .end { display: flex; gap: 10px; align-items: center; margin: 6px 0; }
  .end b { width: 18px; } .end input[type=number] { width: 64px; }
  #message { color: #b00020; min-height: 1.2em; margin-top: 8px; font-size: 14px; }
  #test-result { font-size: 11px; color: #555; }
  button { padding: 4px 12px; }
</style>
</head>
<body>
<h1>Latent-space explorer</h1>
<div id="net">loading...</div>
<div class="row">
  <img id="picture" class="px" alt="the decoded picture">
  <div id="sliders"></div>
</div>
<div class="controls">
  <button id="sample">sample</button>
  <label>temperature <input id="temperature" type="range" min="0.05" max="2" step="0.05" value="1"></label>
  <span id="temperature-value">1.00</span>
  <button id="origin">origin</button>
</div>
<h2>Interpolation</h2>
<div id="ends"></div>
<div class="controls">
  <label>kind <select id="kind"><option value="linear">lerp (linear)</option>
    <option value="spherical">slerp (spherical)</option></select></label>
  <label>steps <input id="steps" type="number" min="2" max="16" value="8"></label>
</div>
<img id="strip" class="px" alt="the interpolation strip">
<div id="message" role="status"></div>
<pre id="test-result"></pre>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let info = null, z = [], busy = false, pending = false;
const codes = { A: null, B: null };

function say(text) { $("message").textContent = text || ""; }
function zText(v) { return v.map((x) => Number(x).toFixed(4)).join(","); }

async function get(url, json) {
  const answer = await fetch(url);
  if (!answer.ok) throw new Error((await answer.text()).trim() || answer.statusText);
  return json ? answer.json() : answer.blob();
}

// drawn sizes in CSS pixels: the picture about 224 wide, the ends 56, the strip 3 pixels per pixel
const WIDTHS = { picture: (w) => Math.max(1, Math.round(224 / w)) * w, strip: (w) => Math.min(3 * w, 940) };

function show(img, blob) {
  return new Promise((resolve) => {
    const old = img.src;
    img.onload = () => {
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      const width = WIDTHS[img.id] || ((w) => Math.max(1, Math.round(56 / w)) * w);
      img.style.width = width(img.naturalWidth) + "px";
      resolve();
    };
    img.onerror = () => resolve();
    img.src = URL.createObjectURL(blob);
  });
}

function redraw() {
  if (busy) { pending = true; return; }
  busy = true; pending = false;
  get("decode?z=" + zText(z))
    .then((blob) => show($("picture"), blob)).then(() => say(""))
    .catch((e) => say(e.message))
    .finally(() => { busy = false; if (pending) redraw(); });
}

function setSliders(code) {
  z = code.slice();
  document.querySelectorAll("#sliders input").forEach((s, i) => {
    s.value = z[i];
    s.nextElementSibling.textContent = Number(z[i]).toFixed(2);
  });
  redraw();
}

function buildSliders() {
  const box = $("sliders");
  for (let i = 0; i < info.latent_size; i++) {
    const label = document.createElement("label"); label.textContent = "z" + (i + 1);
    const slider = document.createElement("input");
    Object.assign(slider, { type: "range", min: -info.slider_range, max: info.slider_range, step: 0.01, value: 0 });
    slider.setAttribute("aria-label", "z" + (i + 1));
    const value = document.createElement("span"); value.textContent = "0.00";
    slider.addEventListener("input", () => {
      z[i] = parseFloat(slider.value); value.textContent = z[i].toFixed(2); redraw();
    });
    box.append(label, slider, value);
  }
}

async function drawStrip() {
  if (!codes.A || !codes.B) return;
  const url = "interpolate?a=" + zText(codes.A) + "&b=" + zText(codes.B) +
              "&steps=" + $("steps").value + "&kind=" + $("kind").value;
  try { await show($("strip"), await get(url)); say(""); } catch (e) { say(e.message); }
}

async function setEnd(name, code, thumb) {
  codes[name] = code;
  await show($("thumb-" + name), thumb);
  await drawStrip();
}

function buildEnd(name, first) {
  const row = document.createElement("div"); row.className = "end";
  row.innerHTML = "<b>" + name + "</b>";
  const thumb = document.createElement("img"); thumb.className = "px"; thumb.id = "thumb-" + name;
  thumb.alt = "end " + name; row.append(thumb);
  if (info.images > 0) {
    const index = document.createElement("input");
    Object.assign(index, { type: "number", min: 0, max: info.images - 1, value: first, id: "index-" + name });
    index.title = "the number of one of the server's " + info.images + " pictures";
    const choose = async () => {
      try {
        const i = index.value;
        const [code, picture] = await Promise.all([get("encode?index=" + i, true), get("picture?index=" + i)]);
        await setEnd(name, code.z, picture);
      } catch (e) { say(name + ": " + e.message); }
    };
    index.addEventListener("change", choose);
    row.append("picture", index);
    row.choose = choose;
  }
  if (info.can_encode) {
    const file = document.createElement("input");
    Object.assign(file, { type: "file", accept: "image/*", id: "upload-" + name });
    file.addEventListener("change", async () => {
      const f = file.files[0];
      if (!f) return;
      if (f.size > info.upload_limit) {
        say(name + ": " + f.name + " is larger than " + info.upload_limit + " bytes");
        return;
      }
      try {
        const answer = await fetch("encode", { method: "POST", body: f });
        if (!answer.ok) throw new Error((await answer.text()).trim());
        await setEnd(name, (await answer.json()).z, f);
      } catch (e) { say(name + ": " + e.message); }
    });
    row.append(file);
  }
  const take = document.createElement("button"); take.textContent = name + " \u2190 sliders";
  take.addEventListener("click", async () => {
    try { await setEnd(name, z.slice(), await get("decode?z=" + zText(z))); } catch (e) { say(e.message); }
  });
  row.append(take);
  $("ends").append(row);
  return row;
}

function idle() {
  return new Promise((resolve) => {
    const check = () => (busy || pending ? setTimeout(check, 20) : resolve());
    check();
  });
}

function pixelHash(img) {
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let h = 2166136261;
  for (let i = 0; i < data.length; i++) { h ^= data[i]; h = Math.imul(h, 16777619) >>> 0; }
  return h.toString(16) + "/" + canvas.width + "x" + canvas.height;
}

async function selfTest() {
  await idle();
  const before = pixelHash($("picture"));
  const slider = document.querySelector("#sliders input");
  slider.value = 2.5;
  slider.dispatchEvent(new Event("input", { bubbles: true }));
  await idle();
  const after = pixelHash($("picture"));
  const strip = $("strip").naturalWidth;
  $("test-result").textContent = JSON.stringify({ before, after, changed: before !== after, z, strip });
}

async function start() {
  try { info = await get("info", true); } catch (e) { say("cannot reach the explorer: " + e.message); return; }
  $("net").textContent = info.net + ": latent size " + info.latent_size +
    ", pictures " + info.image_shape.join("\u00d7") +
    (info.images ? ", " + info.images + " pictures to interpolate between" : "");
  z = new Array(info.latent_size).fill(0);
  $("steps").max = Math.min(16, info.max_steps);
  buildSliders();
  redraw();
  $("sample").addEventListener("click", async () => {
    const url = "sample?temperature=" + $("temperature").value;
    try { setSliders((await get(url, true)).z); } catch (e) { say(e.message); }
  });
  $("origin").addEventListener("click", () => setSliders(new Array(info.latent_size).fill(0)));
  $("temperature").addEventListener("input", () => {
    $("temperature-value").textContent = Number($("temperature").value).toFixed(2);
  });
  $("kind").addEventListener("change", drawStrip);
  $("steps").addEventListener("change", drawStrip);
  const rows = [buildEnd("A", 0), buildEnd("B", Math.min(1, Math.max(0, info.images - 1)))];
  for (const [i, row] of rows.entries()) {
    const name = i ? "B" : "A";
    if (row.choose) await row.choose();
    else {
      try {
        const code = (await get("sample?temperature=1&seed=" + (i + 1), true)).z;
        await setEnd(name, code, await get("decode?z=" + zText(code)));
      } catch (e) { say(e.message); }
    }
  }
  if (location.hash === "#test-move") await selfTest();
}

start();
</script>
</body>
</html>
"""
