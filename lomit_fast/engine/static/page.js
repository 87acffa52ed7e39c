// The lomit-fast page: plain JS, no build step. Masks live in S x S canvases (the model's image
// size); what is shown is the image scaled up with the mask tinted over it.
"use strict";

const $ = (id) => document.getElementById(id);
const TINT = [255, 220, 0], TINT_OPACITY = 0.55;  // the tests read these
const state = {
  size: 64,
  files: { in: null, ex: null },        // the uploaded File objects, sent as they are
  images: { in: null, ex: null },       // decoded for display
  masks: { in: null, ex: null },        // S x S canvases, gray = mask value
  edited: { in: false, ex: false },     // painted by the user: sent, not replaced by predictions
  busy: false, again: false, runs: 0,
};

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function newMask() {
  const c = document.createElement("canvas");
  c.width = c.height = state.size;
  const ctx = c.getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, state.size, state.size);
  return c;
}

// --- drawing ---------------------------------------------------------------------------------
function render(which) {
  const canvas = $("canvas-" + which), ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, s = state.size;
  ctx.clearRect(0, 0, w, h);
  if (!state.images[which]) {
    ctx.fillStyle = "#888";
    ctx.font = "16px system-ui";
    ctx.fillText("drop an image here", 90, h / 2);
    return;
  }
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(state.images[which], 0, 0, w, h);
  if (!state.masks[which]) return;
  // The mask as a yellow tint whose opacity is the mask value ...
  const m = state.masks[which].getContext("2d").getImageData(0, 0, s, s).data;
  const tint = document.createElement("canvas");
  tint.width = tint.height = s;
  const t = tint.getContext("2d"), data = t.createImageData(s, s);
  for (let i = 0; i < s * s; i++) {
    data.data[4 * i] = TINT[0]; data.data[4 * i + 1] = TINT[1]; data.data[4 * i + 2] = TINT[2];
    data.data[4 * i + 3] = Math.round(m[4 * i] * TINT_OPACITY);
  }
  t.putImageData(data, 0, 0);
  ctx.drawImage(tint, 0, 0, w, h);
  // ... and its 0.5 level as a black-and-white outline, visible on any colour.
  const inside = (x, y) => x >= 0 && y >= 0 && x < s && y < s && m[4 * (y * s + x)] >= 128;
  const k = w / s;
  const edge = (x0, y0, x1, y1) => { ctx.moveTo(x0 * k, y0 * k); ctx.lineTo(x1 * k, y1 * k); };
  ctx.beginPath();
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {  // each side of a mask pixel that borders a non-mask pixel
      if (!inside(x, y)) continue;
      if (!inside(x - 1, y)) edge(x, y, x, y + 1);
      if (!inside(x + 1, y)) edge(x + 1, y, x + 1, y + 1);
      if (!inside(x, y - 1)) edge(x, y, x + 1, y);
      if (!inside(x, y + 1)) edge(x, y + 1, x + 1, y + 1);
    }
  }
  ctx.lineWidth = 3; ctx.strokeStyle = "#000"; ctx.stroke();
  ctx.lineWidth = 1; ctx.strokeStyle = "#fff"; ctx.stroke();
}

// --- painting --------------------------------------------------------------------------------
function setUpPainting(which) {
  const canvas = $("canvas-" + which);
  let last = null;
  const toMask = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * state.size / r.width,
            (e.clientY - r.top) * state.size / r.height];
  };
  const stroke = (from, to, erase) => {
    const ctx = state.masks[which].getContext("2d");
    ctx.strokeStyle = ctx.fillStyle = erase ? "#000" : "#fff";
    ctx.lineWidth = +$("brush").value;
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0] + 0.01, to[1]);  // a click is a dot
    ctx.stroke();
    render(which);
  };
  const erasing = (e) =>
    e.shiftKey || document.querySelector("input[name=mode]:checked").value === "erase";
  canvas.addEventListener("pointerdown", (e) => {
    if (!state.masks[which]) return;
    canvas.setPointerCapture(e.pointerId);
    last = toMask(e);
    stroke(last, last, erasing(e));
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!last) return;
    const p = toMask(e);
    stroke(last, p, erasing(e));
    last = p;
  });
  const end = () => {
    if (!last) return;
    last = null;
    state.edited[which] = true;
    translate();  // the result follows every stroke
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
}

// --- files -----------------------------------------------------------------------------------
function useFile(which, file) {
  if (!file) return;
  const image = new Image();
  image.onload = () => {
    state.files[which] = file;
    state.images[which] = image;
    state.masks[which] = null;
    state.edited[which] = false;
    render(which);
    translate();
  };
  image.onerror = () => status(`${file.name}: the browser cannot show this file`, true);
  image.src = URL.createObjectURL(file);
}

function setUpFile(which) {
  const panel = $("panel-" + which);
  $("file-" + which).addEventListener("change", (e) => useFile(which, e.target.files[0]));
  panel.addEventListener("dragover", (e) => { e.preventDefault(); panel.classList.add("drop"); });
  panel.addEventListener("dragleave", () => panel.classList.remove("drop"));
  panel.addEventListener("drop", (e) => {
    e.preventDefault();
    panel.classList.remove("drop");
    useFile(which, e.dataTransfer.files[0]);
  });
}

// --- the service -----------------------------------------------------------------------------
// A mask as PNG, its values times `scale` (the style strength weakens the input mask).
function maskBlob(which, scale = 1) {
  let mask = state.masks[which];
  if (scale !== 1) {
    mask = newMask();
    const ctx = mask.getContext("2d");
    ctx.drawImage(state.masks[which], 0, 0);
    const data = ctx.getImageData(0, 0, state.size, state.size);
    for (let i = 0; i < data.data.length; i++) {
      if (i % 4 !== 3) data.data[i] = Math.round(data.data[i] * scale);
    }
    ctx.putImageData(data, 0, 0);
  }
  return new Promise((ok) => mask.toBlob(ok, "image/png"));
}

function loadMask(which, base64) {
  return new Promise((ok, fail) => {
    const image = new Image();
    image.onload = () => {
      const mask = newMask();
      mask.getContext("2d").drawImage(image, 0, 0, state.size, state.size);
      state.masks[which] = mask;
      render(which);
      ok();
    };
    image.onerror = fail;
    image.src = "data:image/png;base64," + base64;
  });
}

async function translate() {
  if (!state.files.in || !state.files.ex) return;
  if (state.busy) { state.again = true; return; }  // one request at a time; the latest wins
  state.busy = true;
  const form = new FormData();
  form.append("image", state.files.in);
  form.append("exemplar", state.files.ex);
  const strength = +$("strength").value / 100;
  const weaken = strength < 1 && state.masks.in !== null;  // the input mask, times strength
  if (state.edited.in || weaken) form.append("mask_in", await maskBlob("in", strength), "in.png");
  if (state.edited.ex) form.append("mask_ex", await maskBlob("ex"), "ex.png");
  const start = performance.now();
  status("translating...");
  try {
    const response = await fetch("/v1/translate", { method: "POST", body: form });
    const answer = await response.json();
    if (!response.ok) {
      throw new Error(answer.detail ? JSON.stringify(answer.detail) : response.statusText);
    }
    const url = "data:image/png;base64," + answer.image;
    $("output").src = url;
    $("download").href = url;
    $("download").setAttribute("aria-disabled", "false");
    for (const which of ["in", "ex"]) {  // predictions replace only masks nobody painted
      if (!state.edited[which] && !(which === "in" && weaken)) {
        await loadMask(which, answer["mask_" + which]);
      }
    }
    if (strength < 1 && !weaken) state.again = true;  // now there is a mask to weaken
    state.runs += 1;
    document.body.dataset.runs = state.runs;
    const ms = Math.round(performance.now() - start);
    status(`translated in ${ms} ms (${answer.backend}, ${answer.size}x${answer.size}` +
           `${state.edited.in || state.edited.ex ? ", painted masks" : ", predicted masks"}` +
           `${weaken ? `, strength ${Math.round(strength * 100)} %` : ""})`);
    $("translate").disabled = $("reset").disabled = false;
  } catch (e) {
    status("translation failed: " + e.message, true);
  }
  state.busy = false;
  if (state.again) { state.again = false; translate(); }
}

async function start() {
  try {
    const model = await (await fetch("/v1/model")).json();
    state.size = model.image_size;
    const size = `${model.image_size}x${model.image_size}`;
    $("model").textContent = `· ${size} model, ${model.backend} backend, v${model.version}`;
  } catch (e) {
    status("cannot reach the service: " + e.message, true);
  }
  for (const which of ["in", "ex"]) { setUpFile(which); setUpPainting(which); render(which); }
  $("brush").addEventListener("input", () => { $("brush-value").textContent = $("brush").value; });
  $("strength").addEventListener("input", () => {
    $("strength-value").textContent = $("strength").value;
  });
  $("strength").addEventListener("change", translate);
  $("brush").max = Math.max(4, state.size / 2);
  $("translate").addEventListener("click", translate);
  $("reset").addEventListener("click", () => {
    state.edited.in = state.edited.ex = false;
    translate();
  });
  document.body.dataset.ready = "true";
}

start();
