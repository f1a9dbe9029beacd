// parsing studio: parse photos with POST /parse, correct the garment list, parse again, save with POST /save.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { labels: null, photos: [], current: -1, show: "overlay" };

async function api(path, form) {
  const response = await fetch(path, { method: form ? "POST" : "GET", body: form });
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function busy(on) {
  for (const id of ["reparse", "reset", "save", "add"]) $(id).disabled = on;
}

async function start() {
  state.labels = await api("/labels");
  const select = $("add-select");
  for (const name of state.labels.garments) select.add(new Option(name, name));
  $("save-row").hidden = !state.labels.dataset;
  $("token").hidden = !state.labels.token_required;
  $("file").addEventListener("change", (e) => addFiles(e.target.files));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); addFiles(e.dataTransfer.files); });
  $("show-overlay").onclick = () => { state.show = "overlay"; render(); };
  $("show-mask").onclick = () => { state.show = "mask"; render(); };
  $("add").onclick = () => editGarments((g) => g.includes(select.value) ? g : [...g, select.value]);
  $("reparse").onclick = () => parse(photo(), photo().garments);
  $("reset").onclick = () => parse(photo(), null);
  $("save").onclick = save;
}

const photo = () => state.photos[state.current];

function addFiles(files) {
  for (const file of files) {
    state.photos.push({ file, name: file.name, result: null, garments: null, error: null });
  }
  renderList();
  if (state.current < 0 && state.photos.length) select(0);
}

function renderList() {
  const list = $("photos");
  list.replaceChildren();
  state.photos.forEach((p, i) => {
    const item = document.createElement("li");
    item.textContent = p.name + (p.error ? " — " + p.error : "");
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
  else render();
}

async function parse(p, garments) {
  const form = new FormData();
  form.append("file", p.file, p.name);
  form.append("overlay", "true");
  form.append("cutouts", "true");
  if (garments) form.append("garments", garments.join(","));
  busy(true);
  status(`parsing ${p.name}…`);
  try {
    p.result = await api("/parse", form);
    p.garments = garments ? [...garments] : [...p.result.outfit];
    p.error = null;
    status(`${p.name}: ${p.result.outfit.join(", ") || "no garments"}`);
  } catch (err) {
    p.error = err.message;
    status(`${p.name}: ${err.message}`, true);
  } finally {
    busy(false);
    renderList();
    render();
  }
}

function editGarments(change) {
  const p = photo();
  if (!p || !p.result) return;
  p.garments = change([...p.garments]);
  render();
  status(`garments: ${p.garments.join(", ") || "none"} — parse again to apply`);
}

function render() {
  const p = photo();
  $("work").hidden = !p || !p.result;
  if (!p || !p.result) return;
  const r = p.result;
  $("photo-name").textContent = `${p.name} (${r.size[0]}×${r.size[1]})`;
  $("show-overlay").classList.toggle("on", state.show === "overlay");
  $("show-mask").classList.toggle("on", state.show === "mask");
  $("view").src = state.show === "overlay" ? `data:image/jpeg;base64,${r.overlay_jpeg}` : `data:image/png;base64,${r.mask_png}`;
  const body = $("legend").tBodies[0];
  body.replaceChildren();
  const shown = new Map(r.labels.map((l) => [l.label, l]));
  const names = [...p.garments, ...r.labels.map((l) => l.label).filter((n) => !state.labels.garments.includes(n))];
  for (const name of names) {
    const l = shown.get(name) || { label: name, share: 0, confidence: null, alternative: null };
    const garment = state.labels.garments.includes(name);
    const row = body.insertRow();
    row.dataset.label = name;
    if (l.confidence !== null && l.confidence < 0.5) row.className = "unsure";
    const colour = r.palette[r.names.indexOf(name)] || [255, 255, 255];
    row.insertCell().innerHTML = `<span class="swatch" style="background: rgb(${colour.join(",")})"></span>`;
    row.insertCell().textContent = name;
    row.insertCell().textContent = `${(100 * l.share).toFixed(1)} %`;
    const conf = row.insertCell();
    conf.className = "conf";
    conf.textContent = l.confidence === null ? "–" : l.confidence.toFixed(2);
    row.insertCell().textContent = l.alternative ? `${l.alternative} ${l.alternative_confidence.toFixed(2)}` : "";
    const actions = row.insertCell();
    if (!garment) continue;
    const remove = button("remove", () => editGarments((g) => g.filter((n) => n !== name)));
    remove.className = "remove";
    actions.append(remove);
    if (l.alternative && state.labels.garments.includes(l.alternative)) {
      const swap = button(`→ ${l.alternative}`, () => editGarments((g) => replace(g, name, l.alternative)));
      swap.className = "switch";
      actions.append(swap);
    }
    const other = document.createElement("select");
    other.className = "relabel";
    other.add(new Option("relabel…", ""));
    for (const n of state.labels.garments) if (n !== name) other.add(new Option(n, n));
    other.onchange = () => other.value && editGarments((g) => replace(g, name, other.value));
    actions.append(other);
  }
  const link = $("download-mask");
  link.href = `data:image/png;base64,${r.mask_png}`;
  link.download = p.name.replace(/\.[^.]*$/, "") + ".png";
  const cutouts = $("cutouts");
  cutouts.replaceChildren();
  for (const [name, png] of Object.entries(r.cutouts || {})) {
    const a = document.createElement("a");
    a.href = `data:image/png;base64,${png}`;
    a.download = `${name}.png`;
    a.textContent = name;
    cutouts.append(a);
  }
}

function replace(list, from, to) {
  const out = list.map((n) => (n === from ? to : n));
  return out.filter((n, i) => out.indexOf(n) === i);
}

function button(text, onclick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.onclick = onclick;
  return b;
}

async function save() {
  const p = photo();
  if (!p || !p.result) return;
  const form = new FormData();
  form.append("file", p.file, p.name);
  form.append("garments", p.garments.join(","));
  form.append("name", p.name);
  if (!$("token").hidden) form.append("token", $("token").value);
  busy(true);
  try {
    const saved = await api("/save", form);
    status(`saved ${saved.saved.image} + ${saved.saved.mask}`);
  } catch (err) {
    status(`not saved: ${err.message}`, true);
  } finally {
    busy(false);
  }
}

start().catch((err) => status(`cannot reach the server: ${err.message}`, true));
