// parsing studio: parse a photo (POST /parse, edit=true), fix its mask with the tools (POST /edit: click, paint,
// set), save exactly the mask on screen (POST /save). Every edit runs on the server's Parse; undo/redo send back
// an earlier mask (op=set).
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  labels: null, photos: [], current: -1, tool: "fill", label: null, view: { scale: 1, x: 0, y: 0 },
  space: false, polygon: [], stroke: null, busy: false, hoverTimer: 0, token: 0,
};

async function api(path, form) {
  const response = await fetch(path, { method: form ? "POST" : "GET", body: form });
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw Object.assign(new Error(body.error || `HTTP ${response.status}`), { status: response.status });
  return body;
}

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function busy(on) {
  state.busy = on;
  for (const id of ["reparse", "reset", "save", "save-next", "add", "undo", "redo"]) $(id).disabled = on;
}

const photo = () => state.photos[state.current];
const colourOf = (name) => (state.labels.labels.find((l) => l.name === name) || { colour: [255, 255, 255] }).colour;
const rgb = (c, a = 1) => `rgba(${c[0]},${c[1]},${c[2]},${a})`;

async function start() {
  state.labels = await api("/labels");
  const select = $("add-select");
  for (const name of state.labels.garments) select.add(new Option(name, name));
  for (const l of state.labels.labels) $("label-names").append(new Option(l.name));
  pickLabel(state.labels.garments[0]);
  $("save-row").hidden = !state.labels.dataset;
  $("token").hidden = !state.labels.token_required;
  $("file").addEventListener("change", (e) => addFiles(e.target.files));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); addFiles(e.dataTransfer.files); });
  $("add").onclick = () => editGarments((g) => g.includes(select.value) ? g : [...g, select.value]);
  $("reparse").onclick = () => parse(photo(), photo().garments);
  $("reset").onclick = () => parse(photo(), null);
  $("save").onclick = () => save(false);
  $("save-next").onclick = () => save(true);
  $("undo").onclick = () => undo(-1);
  $("redo").onclick = () => undo(+1);
  $("zoom-in").onclick = () => zoom(1.25);
  $("zoom-out").onclick = () => zoom(0.8);
  $("zoom-fit").onclick = fit;
  $("opacity").oninput = drawMask;
  $("label").onchange = () => { pickLabel($("label").value); $("label").blur(); };  // shortcuts work again
  for (const b of document.querySelectorAll("#tools [data-tool]")) b.onclick = () => pickTool(b.dataset.tool);
  pointerEvents($("stage"));
  if (state.labels.queue) await loadQueue();
  document.addEventListener("keydown", keys);
  document.addEventListener("keyup", (e) => { if (e.key === " ") state.space = false; });
}

function pickTool(tool) {
  state.tool = tool;
  state.polygon = [];
  for (const b of document.querySelectorAll("#tools [data-tool]")) b.classList.toggle("on", b.dataset.tool === tool);
  $("stage").className = tool;
  clearHover();
}

function pickLabel(name) {
  if (!state.labels.labels.some((l) => l.name === name)) {
    status(`no label ${JSON.stringify(name)}: type one of the listed names`, true);
    return;
  }
  state.label = name;
  $("label").value = name;
  $("label-swatch").style.background = rgb(colourOf(name));
  for (const row of $("legend").tBodies[0].rows) row.classList.toggle("picked", row.dataset.label === name);
}

function keys(e) {
  if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
  const key = e.key.toLowerCase();
  if ((e.ctrlKey || e.metaKey) && key === "z") { e.preventDefault(); undo(e.shiftKey ? +1 : -1); return; }
  if ((e.ctrlKey || e.metaKey) && key === "y") { e.preventDefault(); undo(+1); return; }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const tools = { f: "fill", b: "brush", e: "eraser", p: "polygon", h: "pan" };
  if (tools[key]) pickTool(tools[key]);
  else if (key === " ") { state.space = true; e.preventDefault(); }
  else if (key === "+" || key === "=") zoom(1.25);
  else if (key === "-") zoom(0.8);
  else if (key === "0") fit();
  else if (key === "[" || key === "]") $("size").value = +$("size").value + (key === "]" ? 4 : -4);
  else if (key === "enter" && state.polygon.length > 2) closePolygon();
  else if (key === "escape") { state.polygon = []; clearHover(); }
  else if (/^[1-9]$/.test(key)) {
    const row = $("legend").tBodies[0].rows[+key - 1];
    if (row) pickLabel(row.dataset.label);
  }
}

// --- photos and parses --------------------------------------------------------------------------------------
// The labelling queue (parsing serve --photos DIR): the server's photos, unsaved and most unsure first.
async function loadQueue() {
  const queue = await api("/queue");
  const known = new Set(state.photos.map((p) => p.name));
  for (const row of queue.photos) {
    if (!known.has(row.name)) state.photos.push({ name: row.name, remote: true, saved: row.done, result: null });
  }
  queueStatus(queue);
  renderList();
  const first = state.photos.findIndex((p) => !p.saved);
  if (state.current < 0 && first >= 0) select(first);
}

function queueStatus(queue) {
  $("queue-status").hidden = false;
  $("queue-status").textContent = `queue: ${queue.done} done, ${queue.remaining} to label` +
    (queue.scored < queue.photos.length ? ` (ranking ${queue.scored}/${queue.photos.length}…)` : "");
}

async function remoteFile(p) {
  const path = p.name.split("/").map(encodeURIComponent).join("/");
  const response = await fetch(`/photos/${path}`);
  if (!response.ok) throw new Error(`cannot fetch ${p.name} (HTTP ${response.status})`);
  return new File([await response.blob()], p.name.split("/").pop(), { type: response.headers.get("content-type") || "" });
}

function addFiles(files) {
  for (const file of files) state.photos.push({ file, name: file.name, result: null, garments: null, error: null });
  renderList();
  if (state.current < 0 && state.photos.length) select(0);
}

function renderList() {
  const list = $("photos");
  list.replaceChildren();
  state.photos.forEach((p, i) => {
    const item = document.createElement("li");
    item.textContent = p.name + (p.saved ? " ✓" : "") + (p.error ? " — " + p.error : "");
    item.className = (i === state.current ? "current " : "") + (p.error ? "error" : "");
    item.onclick = () => select(i);
    list.append(item);
  });
}

async function select(i) {
  state.current = i;
  renderList();
  const p = photo();
  if (!p.result && !p.error) await parse(p, null);
  else show();
}

async function parse(p, garments) {
  if (p.remote && !p.file) {
    try {
      p.file = await remoteFile(p);
    } catch (err) {
      p.error = err.message;
      status(err.message, true);
      renderList();
      show();
      return;
    }
  }
  const form = new FormData();
  form.append("file", p.file, p.name);
  form.append("edit", "true");
  form.append("cutouts", "true");
  if (garments) form.append("garments", garments.join(","));
  busy(true);
  status(`parsing ${p.name}…`);
  try {
    const result = await api("/parse", form);
    p.picture = p.picture || await loadImage(URL.createObjectURL(p.file));
    p.result = result;
    p.garments = garments ? [...garments] : [...result.outfit];
    p.history = [result.mask_png];
    p.at = 0;
    p.error = null;
    const missing = (garments || []).filter((g) => !result.outfit.includes(g));
    status(`${p.name}: ${result.outfit.join(", ") || "no garments"}` + (missing.length ?
      ` — the model did not place ${missing.join(", ")}: pick it and click its region (Fill) or paint it` : ""));
  } catch (err) {
    p.error = err.message;
    status(`${p.name}: ${err.message}`, true);
  } finally {
    busy(false);
    renderList();
    if (p === photo()) { show(); fit(); }
  }
}

const loadImage = (src) => new Promise((resolve, reject) => {
  const im = new Image();
  im.onload = () => resolve(im);
  im.onerror = () => reject(new Error("the browser cannot show this photo"));
  im.src = src;
});

function show() {
  const p = photo();
  $("work").hidden = !p || !p.result;
  if (!p || !p.result) return;
  const [w, h] = p.result.size;
  for (const c of [$("canvas"), $("hover")]) if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
  $("photo-name").textContent = `${p.name} (${w}×${h})`;
  drawMask();
  legend();
}

// The mask PNG as an image whose null pixels are transparent, drawn over the photo at the chosen opacity.
async function drawMask() {
  const p = photo();
  if (!p || !p.result) return;
  const png = p.result.mask_png;
  if (p.maskFor !== png) {
    const im = await loadImage(`data:image/png;base64,${png}`);
    const off = document.createElement("canvas");
    off.width = im.width; off.height = im.height;
    const g = off.getContext("2d");
    g.drawImage(im, 0, 0);
    const data = g.getImageData(0, 0, off.width, off.height);
    const bg = colourOf("null");
    for (let i = 0; i < data.data.length; i += 4) {
      if (data.data[i] === bg[0] && data.data[i + 1] === bg[1] && data.data[i + 2] === bg[2]) data.data[i + 3] = 0;
    }
    g.putImageData(data, 0, 0);
    p.maskLayer = off;
    p.maskFor = png;
  }
  if (p !== photo()) return;
  const g = $("canvas").getContext("2d");
  g.globalAlpha = 1;
  g.drawImage(p.picture, 0, 0, $("canvas").width, $("canvas").height);
  g.globalAlpha = $("opacity").value / 100;
  g.drawImage(p.maskLayer, 0, 0);
  g.globalAlpha = 1;
  const link = $("download-mask");
  link.href = `data:image/png;base64,${png}`;
  link.download = p.name.replace(/\.[^.]*$/, "") + ".png";
  $("undo").disabled = state.busy || p.at <= 0;
  $("redo").disabled = state.busy || p.at >= p.history.length - 1;
}

function legend() {
  const p = photo(), r = p.result;
  const body = $("legend").tBodies[0];
  body.replaceChildren();
  const shown = new Map(r.labels.map((l) => [l.label, l]));
  const names = [...p.garments, ...r.labels.map((l) => l.label).filter((n) => !p.garments.includes(n))];
  for (const name of names) {
    const l = shown.get(name) || { label: name, share: 0, confidence: null, alternative: null };
    const garment = state.labels.garments.includes(name);
    const row = body.insertRow();
    row.dataset.label = name;
    row.className = (l.confidence !== null && l.confidence < 0.5 ? "unsure " : "") + (name === state.label ? "picked" : "");
    row.insertCell().innerHTML = `<span class="swatch" style="background: ${rgb(colourOf(name))}"></span>`;
    const label = row.insertCell();
    label.textContent = name;
    label.title = "paint with this label";
    label.onclick = () => pickLabel(name);
    row.insertCell().textContent = shown.has(name) ? `${(100 * l.share).toFixed(1)} %` : "not placed";
    const conf = row.insertCell();
    conf.className = "conf";
    conf.textContent = l.confidence === null ? "–" : l.confidence.toFixed(2);
    row.insertCell().textContent = l.alternative ? `${l.alternative} ${l.alternative_confidence.toFixed(2)}` : "";
    const actions = row.insertCell();
    if (!garment) continue;
    if (state.labels.catalogue && shown.has(name)) {
      const similar = button("similar", () => findSimilar(name));
      similar.className = "similar";
      actions.append(similar);
    }
    const remove = button("remove", () => editGarments((g) => g.filter((n) => n !== name)));
    remove.className = "remove";
    actions.append(remove);
    if (l.alternative && state.labels.garments.includes(l.alternative)) {
      const swap = button(`→ ${l.alternative}`, () => editGarments((g) => replace(g, name, l.alternative)));
      swap.className = "switch";
      actions.append(swap);
    }
  }
  const cutouts = $("cutouts");
  cutouts.replaceChildren();
  for (const [name, png] of Object.entries(r.cutouts || {})) {
    const a = document.createElement("a");
    a.href = `data:image/png;base64,${png}`;
    a.download = `${name}.png`;
    a.textContent = name;
    a.title = "cut-out as parsed";
    cutouts.append(a);
  }
}

function editGarments(change) {
  const p = photo();
  if (!p || !p.result) return;
  p.garments = change([...p.garments]);
  legend();
  status(`garments: ${p.garments.join(", ") || "none"} — parse again to apply (your mask edits are replaced)`);
}

const replace = (list, from, to) => list.map((n) => (n === from ? to : n)).filter((n, i, out) => out.indexOf(n) === i);

function button(text, onclick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.onclick = onclick;
  return b;
}

// --- edits ----------------------------------------------------------------------------------------------------
const pngBlob = (b64) => fetch(`data:image/png;base64,${b64}`).then((r) => r.blob());

async function edit(op, fields, blob, record = true) {
  const p = photo();
  const preview = op === "preview";
  if (!p || !p.result || (state.busy && !preview)) return null;
  if (!preview) busy(true);
  try {
    const send = async () => {
      const form = new FormData();
      form.append("id", p.result.edit_id);
      form.append("op", op);
      for (const [k, v] of Object.entries(fields)) form.append(k, v);
      if (blob) form.append("mask", blob, "mask.png");
      return api("/edit", form);
    };
    let answer;
    try {
      answer = await send();
    } catch (err) {
      if (err.status !== 404) throw err;
      await reopen(p);  // the server closed this photo's session (it keeps the newest few): open it again
      answer = await send();
    }
    if (op === "preview") return answer;
    Object.assign(p.result, { mask_png: answer.mask_png, labels: answer.labels, outfit: answer.outfit });
    if (record) {
      p.history = [...p.history.slice(0, p.at + 1), answer.mask_png];
      p.at = p.history.length - 1;
    }
    show();
    status(`${op}: ${answer.outfit.join(", ") || "no garments"}`);
    return answer;
  } catch (err) {
    if (!preview) status(`${op} failed: ${err.message}`, true);
    return null;
  } finally {
    if (!preview) {
      busy(false);
      drawMask();
    }
  }
}

async function reopen(p) {
  const form = new FormData();
  form.append("file", p.file, p.name);
  form.append("edit", "true");
  const fresh = await api("/parse", form);
  p.result.edit_id = fresh.edit_id;
  const set = new FormData();
  set.append("id", fresh.edit_id);
  set.append("op", "set");
  set.append("mask", await pngBlob(p.result.mask_png), "mask.png");
  await api("/edit", set);
}

async function undo(step) {
  const p = photo();
  if (!p || !p.history || state.busy) return;
  const at = p.at + step;
  if (at < 0 || at >= p.history.length) return;
  if (await edit("set", {}, await pngBlob(p.history[at]), false)) p.at = at;
  drawMask();
}

// --- pointer: fill, brush, eraser, polygon, pan, zoom -----------------------------------------------------------
function toPhoto(e) {
  const c = $("canvas"), r = c.getBoundingClientRect();
  return [(e.clientX - r.left) * c.width / r.width, (e.clientY - r.top) * c.height / r.height];
}

function inside([x, y]) {
  return x >= 0 && y >= 0 && x < $("canvas").width && y < $("canvas").height;
}

function applyView() {
  const v = state.view;
  $("layers").style.transform = `translate(${v.x}px, ${v.y}px) scale(${v.scale})`;
}

function fit() {
  const c = $("canvas"), stage = $("stage");
  const scale = Math.min(stage.clientWidth / c.width, stage.clientHeight / c.height) || 1;
  state.view = { scale, x: (stage.clientWidth - c.width * scale) / 2, y: (stage.clientHeight - c.height * scale) / 2 };
  applyView();
}

function zoom(factor, cx, cy) {
  const v = state.view, stage = $("stage");
  cx = cx ?? stage.clientWidth / 2;
  cy = cy ?? stage.clientHeight / 2;
  const scale = Math.min(Math.max(v.scale * factor, 0.05), 40);
  v.x = cx - (cx - v.x) * scale / v.scale;
  v.y = cy - (cy - v.y) * scale / v.scale;
  v.scale = scale;
  applyView();
}

function clearHover() {
  const h = $("hover");
  h.getContext("2d").clearRect(0, 0, h.width, h.height);
}

function pointerEvents(stage) {
  let drag = null;
  stage.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = stage.getBoundingClientRect();
    zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  stage.addEventListener("pointerdown", (e) => {
    stage.setPointerCapture(e.pointerId);
    const panning = state.tool === "pan" || state.space || e.button === 1;
    drag = { x: e.clientX, y: e.clientY, moved: false, panning, at: toPhoto(e) };
    if (!panning && (state.tool === "brush" || state.tool === "eraser") && inside(drag.at)) startStroke(drag.at);
  });
  stage.addEventListener("pointermove", (e) => {
    if (drag && Math.hypot(e.clientX - drag.x, e.clientY - drag.y) > 3) drag.moved = true;
    if (drag && drag.panning) {
      state.view.x += e.clientX - drag.x; state.view.y += e.clientY - drag.y;
      drag.x = e.clientX; drag.y = e.clientY;
      applyView();
      return;
    }
    if (state.stroke) { strokeTo(toPhoto(e)); return; }
    if (state.tool === "fill" && !drag) previewSoon(toPhoto(e));
    if (state.tool === "polygon" && state.polygon.length) drawPolygon(toPhoto(e));
  });
  stage.addEventListener("pointerup", (e) => {
    const d = drag;
    drag = null;
    if (!d || d.panning) return;
    if (state.stroke) { endStroke(); return; }
    const at = toPhoto(e);
    if (d.moved || !inside(at)) return;
    if (state.tool === "fill") {
      clearTimeout(state.hoverTimer);
      clearHover();
      edit("click", { x: at[0].toFixed(1), y: at[1].toFixed(1), label: state.label });
    } else if (state.tool === "polygon") {
      state.polygon.push(at);
      drawPolygon(at);
    }
  });
  stage.addEventListener("dblclick", () => { if (state.tool === "polygon" && state.polygon.length > 2) closePolygon(); });
  stage.addEventListener("pointerleave", () => { clearTimeout(state.hoverTimer); if (!state.stroke) clearHover(); });
}

function previewSoon(at) {
  clearTimeout(state.hoverTimer);
  if (!inside(at) || state.busy) return;
  const token = ++state.token;
  state.hoverTimer = setTimeout(async () => {
    const answer = await edit("preview", { x: at[0].toFixed(1), y: at[1].toFixed(1), label: state.label });
    if (!answer || token !== state.token) return;
    const im = await loadImage(`data:image/png;base64,${answer.region_png}`);
    if (token !== state.token) return;
    const g = $("hover").getContext("2d");
    clearHover();
    g.globalAlpha = 0.6;
    g.drawImage(im, 0, 0);
    g.globalCompositeOperation = "source-in";
    g.fillStyle = rgb(colourOf(state.label));
    g.fillRect(0, 0, $("hover").width, $("hover").height);
    g.globalCompositeOperation = "source-over";
    g.globalAlpha = 1;
  }, 150);
}

function startStroke(at) {
  const off = document.createElement("canvas");
  off.width = $("canvas").width; off.height = $("canvas").height;
  const g = off.getContext("2d");
  g.strokeStyle = g.fillStyle = "#fff";
  g.lineCap = g.lineJoin = "round";
  g.lineWidth = $("size").value / state.view.scale;  // the slider is in screen pixels
  state.stroke = { canvas: off, g, last: at };
  strokeTo(at);
}

function strokeTo(at) {
  const s = state.stroke;
  s.g.beginPath();
  s.g.moveTo(...s.last);
  s.g.lineTo(at[0] + 0.01, at[1]);
  s.g.stroke();
  s.last = at;
  const h = $("hover").getContext("2d");
  clearHover();
  h.drawImage(s.canvas, 0, 0);
  h.globalCompositeOperation = "source-in";
  h.fillStyle = rgb(state.tool === "eraser" ? [255, 255, 255] : colourOf(state.label), 0.7);
  h.fillRect(0, 0, $("hover").width, $("hover").height);
  h.globalCompositeOperation = "source-over";
}

async function endStroke() {
  const s = state.stroke;
  state.stroke = null;
  const blob = await new Promise((resolve) => s.canvas.toBlob(resolve, "image/png"));
  await edit("paint", { label: state.tool === "eraser" ? "null" : state.label }, blob);
  clearHover();
}

function drawPolygon(cursor) {
  const g = $("hover").getContext("2d");
  clearHover();
  g.strokeStyle = rgb(colourOf(state.label));
  g.fillStyle = rgb(colourOf(state.label), 0.35);
  g.lineWidth = 2 / state.view.scale;
  g.beginPath();
  state.polygon.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
  if (cursor) g.lineTo(...cursor);
  g.closePath();
  g.fill();
  g.stroke();
}

async function closePolygon() {
  const off = document.createElement("canvas");
  off.width = $("canvas").width; off.height = $("canvas").height;
  const g = off.getContext("2d");
  g.fillStyle = "#fff";
  g.beginPath();
  state.polygon.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
  g.closePath();
  g.fill();
  state.polygon = [];
  const blob = await new Promise((resolve) => off.toBlob(resolve, "image/png"));
  await edit("paint", { label: state.label }, blob);
  clearHover();
}

// --- the catalogue (parsing serve --catalogue DIR): garments like this one ---------------------------------------
async function findSimilar(garment) {
  const p = photo();
  const form = new FormData();
  form.append("file", p.file, p.name);
  form.append("garment", garment);
  form.append("k", "12");
  form.append("thumbnails", "true");
  status(`looking for ${garment}s like this one…`);
  try {
    const answer = await api("/search", form);
    const list = $("similar");
    list.replaceChildren();
    for (const hit of answer.hits) {
      const figure = document.createElement("figure");
      if (hit.thumbnail_jpeg) {
        const img = document.createElement("img");
        img.src = `data:image/jpeg;base64,${hit.thumbnail_jpeg}`;
        img.alt = hit.photo;
        figure.append(img);
      }
      const caption = document.createElement("figcaption");
      caption.textContent = `${hit.photo.split("/").pop()} · ${hit.score.toFixed(2)}`;
      caption.title = hit.photo;
      figure.append(caption);
      list.append(figure);
    }
    $("similar-title").textContent = `${garment} (${answer.hits.length} of ${answer.catalogue} photos)`;
    $("similar-panel").hidden = false;
    status(`${answer.hits.length} similar ${garment}s`);
  } catch (err) {
    status(`similar failed: ${err.message}`, true);
  }
}

// --- save ---------------------------------------------------------------------------------------------------
async function save(next, replace = false) {
  const p = photo();
  if (!p || !p.result) return;
  const form = new FormData();
  form.append("file", p.file, p.name);
  if (replace) form.append("replace", "true");
  form.append("mask", await pngBlob(p.result.mask_png), "mask.png");  // exactly the mask on screen
  form.append("name", p.name);
  if (!$("token").hidden) form.append("token", $("token").value);
  busy(true);
  try {
    const saved = await api("/save", form);
    p.saved = true;
    status(`saved ${saved.saved.image} + ${saved.saved.mask}`);
  } catch (err) {
    busy(false);
    if (err.status === 409 && confirm(`${err.message}\n\nReplace the saved pair with this mask?`)) return await save(next, true);
    status(`not saved: ${err.message}`, true);
    return;
  } finally {
    busy(false);
    renderList();
    drawMask();
  }
  let order = state.photos;
  if (state.labels.queue) {  // the server's order: the most unsure unsaved photos first
    const queue = await api("/queue");
    queueStatus(queue);
    const byName = new Map(state.photos.map((q) => [q.name, q]));
    order = [...queue.photos.map((row) => byName.get(row.name)).filter(Boolean), ...state.photos.filter((q) => !q.remote)];
  }
  if (next) {
    const after = order.find((q) => q !== p && !q.saved && !q.error);
    if (after) select(state.photos.indexOf(after));
    else status("saved — no photo left to label");
  }
}

start().catch((err) => status(`cannot reach the server: ${err.message}`, true));
