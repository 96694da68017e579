// tracknet label: the labelling page. Plain JS, no build step, no network beyond this server.
// The server holds the state (labels, proposals, per-frame state) and saves it; the page draws it,
// sends every change as a PUT /api/labels, and keeps undo and redo stacks of what each change replaced
// (in sessionStorage, per label file and server token, so that a reload of the tab keeps them).
"use strict";

const TOKEN = window.TRACKNET_TOKEN;
const PREFETCH_AHEAD = 8, PREFETCH_BEHIND = 3, BITMAPS_KEPT = 40, TRAIL = 8, HISTORY_KEPT = 500;
const DOUBLE_CLICK_MS = 300;  // a click places the ball this long after it, unless it was half of a double-click
const LOOK_MS = 500;  // Enter confirms an uncertain proposal only when pressed again this long after stopping at it
const SHARP_SCALE = 4;  // zoomed in past the fit to this many screen pixels a source pixel: pixels drawn as squares
const TICK_PX = 70;  // the timeline's frame numbers are at least this far apart
const LOUPE_AWAY = 250;  // a pointer this close (CSS px) to the stage's top-right corner sends the loupe top left
const COLORS = { confirmed: "#2ecc71", interpolated: "#a9dfbf", proposed: "#f1c40f", uncertain: "#e67e22",
                 empty: "#555555" };
const WHY = { score: "a score near the threshold", jump: "tracking rejected this jump", gap: "tracking filled a gap",
              track: "off the track of the frames around it" };

const S = {
  meta: null, labels: [], proposals: [], states: [], revision: -1, current: 0, visClass: 1,
  undo: [], redo: [], bitmaps: new Map(), pending: new Map(), playing: null, view: { s: 1, ox: 0, oy: 0 }, fitted: 1,
  pointer: null, pointerAt: null, shownAt: 0, lastShowMs: null, ready: false, messageFrame: null, clickTimer: null,
  clicked: null, stopped: null, modelStatus: "off", loupeOn: true, ticksFor: "",
};
const $ = (id) => document.getElementById(id);
const view = $("view"), loupe = $("loupe"), timeline = $("timeline"), hover = $("hover");

function api(path, options = {}) {
  const headers = Object.assign({ "X-Token": TOKEN }, options.headers || {});
  return fetch(path, Object.assign({}, options, { headers }));
}

async function json(path, options) {
  const response = await api(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function message(text) { $("message").textContent = text; S.messageFrame = S.current; }

// ------------------------------------------------------------------ frames
function bitmap(i) {
  if (S.bitmaps.has(i)) return Promise.resolve(S.bitmaps.get(i));
  if (S.pending.has(i)) return S.pending.get(i);
  const p = api(`/api/frames/${i}`).then(async (r) => {
    if (!r.ok) throw new Error((await r.json()).error);
    const bmp = await createImageBitmap(await r.blob());
    S.bitmaps.set(i, bmp);
    S.pending.delete(i);
    trimBitmaps();
    return bmp;
  }).catch((e) => { S.pending.delete(i); throw e; });
  S.pending.set(i, p);
  return p;
}

function trimBitmaps() {
  if (S.bitmaps.size <= BITMAPS_KEPT) return;
  const far = [...S.bitmaps.keys()].sort((a, b) => Math.abs(b - S.current) - Math.abs(a - S.current));
  for (const i of far.slice(0, S.bitmaps.size - BITMAPS_KEPT)) { S.bitmaps.get(i).close(); S.bitmaps.delete(i); }
}

function prefetch() {
  const n = S.meta.frames;
  for (let k = 1; k <= PREFETCH_AHEAD; k++) if (S.current + k < n) bitmap(S.current + k).catch(() => {});
  for (let k = 1; k <= PREFETCH_BEHIND; k++) if (S.current - k >= 0) bitmap(S.current - k).catch(() => {});
}

async function go(i) {
  const n = S.meta.frames;
  i = Math.max(0, Math.min(n - 1, i));
  if (i !== S.messageFrame) $("message").textContent = "";  // a message is about the frame it was given on
  if (S.stopped && S.stopped.frame !== i) S.stopped = null;  // back at an uncertain proposal later: stop again
  S.current = i;
  S.shownAt = performance.now();
  updateInfo();
  drawTimeline();
  try {
    await bitmap(i);
  } catch (e) { message(`frame ${i}: ${e.message}`); }
  if (S.current === i) { draw(); S.lastShowMs = performance.now() - S.shownAt; }  // key to pixels on the canvas
  prefetch();
  clearTimeout(S.positionTimer);  // reopening starts where the person left off
  S.positionTimer = setTimeout(() => json("/api/labels", { method: "PUT", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ changes: [], position: S.current }) }).catch(() => {}), 400);
}

// ------------------------------------------------------------------ drawing
function fit() {
  const w = view.clientWidth, h = view.clientHeight, m = S.meta;
  view.width = w; view.height = h;
  const s = Math.min(w / m.width, h / m.height);
  S.view = { s, ox: -(w / s - m.width) / 2, oy: -(h / s - m.height) / 2 };
  S.fitted = s;
}

function toImage(cx, cy) {
  const r = view.getBoundingClientRect(), v = S.view;
  return { x: (cx - r.left) / v.s + v.ox, y: (cy - r.top) / v.s + v.oy };
}

function toClient(x, y) {
  const r = view.getBoundingClientRect(), v = S.view;
  return { x: r.left + (x - v.ox) * v.s, y: r.top + (y - v.oy) * v.s };
}

function pointOf(i) {  // [x, y, kind] of what frame i shows: its label, else its proposal
  const lab = S.labels[i];
  if (lab) return lab.visibility > 0 ? [lab.x, lab.y, lab.interpolated ? "interpolated" : "confirmed"] : null;
  const p = S.proposals[i];
  if (p && p[0] > 0) return [p[1], p[2], S.states[i]];
  return null;
}

function marker(ctx, x, y, color, r, dashed) {
  ctx.save();
  ctx.strokeStyle = color; ctx.lineWidth = 2 / S.view.s;
  if (dashed) ctx.setLineDash([4 / S.view.s, 3 / S.view.s]);
  ctx.beginPath(); ctx.arc(x, y, r / S.view.s, 0, 2 * Math.PI); ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(x - 2 * r / S.view.s, y); ctx.lineTo(x - r / 2 / S.view.s, y);
  ctx.moveTo(x + r / 2 / S.view.s, y); ctx.lineTo(x + 2 * r / S.view.s, y);
  ctx.moveTo(x, y - 2 * r / S.view.s); ctx.lineTo(x, y - r / 2 / S.view.s);
  ctx.moveTo(x, y + r / 2 / S.view.s); ctx.lineTo(x, y + 2 * r / S.view.s);
  ctx.stroke();
  ctx.restore();
}

function drawTrail(ctx) {  // neighbouring frames' points, fading with distance
  for (const side of [-1, 1]) {
    let prev = pointOf(S.current);
    for (let k = 1; k <= TRAIL; k++) {
      const i = S.current + side * k;
      if (i < 0 || i >= S.meta.frames) break;
      const pt = pointOf(i);
      if (!pt) { prev = null; continue; }
      ctx.globalAlpha = 0.85 * (1 - (k - 1) / TRAIL);
      ctx.fillStyle = side < 0 ? "#5dade2" : "#ec7063";
      ctx.beginPath(); ctx.arc(pt[0], pt[1], 3 / S.view.s, 0, 2 * Math.PI); ctx.fill();
      if (prev) {
        ctx.strokeStyle = ctx.fillStyle; ctx.lineWidth = 1.5 / S.view.s;
        ctx.beginPath(); ctx.moveTo(prev[0], prev[1]); ctx.lineTo(pt[0], pt[1]); ctx.stroke();
      }
      prev = pt;
    }
  }
  ctx.globalAlpha = 1;
}

function draw() {
  const ctx = view.getContext("2d"), v = S.view;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, view.width, view.height);
  const bmp = S.bitmaps.get(S.current);
  ctx.setTransform(v.s, 0, 0, v.s, -v.ox * v.s, -v.oy * v.s);
  // smooth at the fitted view, however far a small clip is blown up; squares once the wheel zooms in past it
  ctx.imageSmoothingEnabled = !(v.s > S.fitted * 1.001 && v.s >= SHARP_SCALE);
  ctx.imageSmoothingQuality = "high";
  if (bmp) ctx.drawImage(bmp, 0, 0);
  drawTrail(ctx);
  const pt = pointOf(S.current);
  if (pt) marker(ctx, pt[0], pt[1], COLORS[pt[2]] || "#fff", pt[2] === "interpolated" ? 6 : 9, !S.labels[S.current]);
  const lab = S.labels[S.current], p = S.proposals[S.current];
  const none = lab ? lab.visibility === 0 && "no ball" : p && p[0] === 0 && "proposed: no ball";
  if (none) {  // a frame without a ball says so on the picture too
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.font = "bold 15px system-ui, sans-serif"; ctx.fillStyle = lab ? COLORS.confirmed : COLORS[S.states[S.current]];
    ctx.fillText(none, 10, 22);
  }
  drawLoupe(bmp);
}

function drawLoupe(bmp) {  // top right, or top left while the pointer is near the top right; l hides it
  if (!S.pointer || !bmp || !S.loupeOn) { loupe.style.display = "none"; return; }
  const r = view.getBoundingClientRect(), at = S.pointerAt;
  loupe.classList.toggle("left", at.x > r.right - LOUPE_AWAY && at.y < r.top + LOUPE_AWAY);
  const ctx = loupe.getContext("2d"), zoom = 4, size = loupe.width, half = size / zoom / 2;
  const { x, y } = S.pointer;
  loupe.style.display = "block";
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, size, size);
  ctx.drawImage(bmp, x - half, y - half, 2 * half, 2 * half, 0, 0, size, size);
  ctx.strokeStyle = "rgba(255,255,255,0.7)"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(size / 2, 0); ctx.lineTo(size / 2, size); ctx.moveTo(0, size / 2); ctx.lineTo(size, size / 2); ctx.stroke();
}

function drawTimeline() {
  if (!S.meta) return;
  const w = timeline.clientWidth, h = timeline.clientHeight, n = S.meta.frames;
  timeline.width = w; timeline.height = h;
  const ctx = timeline.getContext("2d"), step = w / n;
  for (let i = 0; i < n; i++) {
    const interpolated = S.labels[i] && S.labels[i].interpolated;
    ctx.fillStyle = (interpolated ? COLORS.interpolated : COLORS[S.states[i]]) || COLORS.empty;
    ctx.fillRect(Math.floor(i * step), 4, Math.max(1, Math.ceil(step)), h - 8);
  }
  const every = tickStep(n, w);
  ctx.fillStyle = "#999";
  for (let i = 0; i < n; i += every) ctx.fillRect(Math.floor((i + 0.5) * step), h - 4, 1, 4);
  ctx.fillStyle = "#fff";
  ctx.fillRect(Math.floor(S.current * step), 0, Math.max(2, Math.ceil(step)), h);
  if (S.ticksFor !== `${w}/${n}`) {  // the frame numbers under the ticks, redone when the width changes
    S.ticksFor = `${w}/${n}`;
    $("ticks").replaceChildren(...Array.from({ length: Math.ceil(n / every) }, (_, k) => {
      const span = document.createElement("span");
      span.textContent = k * every;
      span.style.left = `${Math.max(8, (k * every + 0.5) * step)}px`;
      return span;
    }));
  }
}

function tickStep(n, w) {  // frames between numbered ticks: 1, 2, 5, 10, 20, 50, ... at least TICK_PX apart
  for (let step = 1; ; step *= 10) for (const m of [1, 2, 5]) if (m * step * w / n >= TICK_PX) return m * step;
}

function frameAt(e) {  // the frame under the pointer on the timeline
  const r = timeline.getBoundingClientRect(), n = S.meta.frames;
  return Math.max(0, Math.min(n - 1, Math.floor((e.clientX - r.left) / r.width * n)));
}

function describe(i) {  // frame i's state in words (the timeline's hover readout)
  const lab = S.labels[i], p = S.proposals[i];
  if (lab) return lab.visibility === 0 ? "confirmed, no ball" : lab.interpolated ? "confirmed, interpolated"
    : `confirmed, visibility ${lab.visibility}`;
  if (!p) return "empty";
  return (p[4] ? `uncertain (${WHY[p[4]] || p[4]})` : "proposed") + (p[0] === 0 ? ", no ball" : "");
}

function showHover(e) {
  const i = frameAt(e), r = timeline.getBoundingClientRect();
  hover.textContent = `frame ${i}: ${describe(i)}`;
  hover.style.display = "block";
  const half = hover.offsetWidth / 2;  // kept inside the window at both ends
  hover.style.left = `${Math.max(half, Math.min(r.width - half, e.clientX - r.left))}px`;
}

function updateInfo() {
  const i = S.current, n = S.meta.frames, state = S.states[i] || "empty";
  const name = S.meta.frame_names ? ` (${S.meta.frame_names[i]})` : "";
  $("frame-info").textContent = `frame ${i} / ${n - 1}${name}`;
  const badge = $("state");
  badge.textContent = state + (state === "uncertain" && S.proposals[i] ? `: ${S.proposals[i][4]}` : "")
    + (S.labels[i] && S.labels[i].interpolated ? " (interpolated)" : "");
  badge.className = `badge ${state}`;
  const lab = S.labels[i];
  $("class-info").textContent = `click: visibility ${S.visClass}` + (lab ? ` · label v${lab.visibility}` : "");
  const counts = { confirmed: 0, proposed: 0, uncertain: 0, empty: 0 };
  for (const s of S.states) counts[s]++;
  for (const k of Object.keys(counts)) $(`n-${k}`).textContent = counts[k];
  $("n-interpolated").textContent = S.labels.filter((lab) => lab && lab.interpolated).length;
}

// ------------------------------------------------------------------ changes
function labelJson(frame, lab) {
  if (!lab) return { frame, clear: true };
  return { frame, visibility: lab.visibility, x: lab.x, y: lab.y, interpolated: !!lab.interpolated };
}

function newChange(before) { S.undo.push(before); S.redo = []; }

function historyKey() { return `tracknet-label:${S.meta.labels_path}:${TOKEN}`; }

function keepHistory() {  // the undo and redo stacks outlive a reload (the last HISTORY_KEPT changes of each)
  const last = (stack) => stack.slice(-HISTORY_KEPT);
  try { sessionStorage.setItem(historyKey(), JSON.stringify({ undo: last(S.undo), redo: last(S.redo) })); }
  catch (e) { /* storage full or off: the stacks still work until the tab reloads */ }
}

function restoreHistory() {
  try {
    const kept = JSON.parse(sessionStorage.getItem(historyKey()));
    if (kept) { S.undo = kept.undo; S.redo = kept.redo; }
  } catch (e) { /* none kept, or not readable: start with empty stacks */ }
}

async function change(items, push = newChange) {  // items: [{frame, label|null}]; push(what they replace)
  const before = items.map(({ frame }) => ({ frame, label: S.labels[frame] }));
  const changes = items.map(({ frame, label }) => labelJson(frame, label));
  try {
    await json("/api/labels", { method: "PUT", headers: { "Content-Type": "application/json" },
                                body: JSON.stringify({ changes, position: S.current }) });
  } catch (e) { message(e.message); return false; }
  for (const { frame, label } of items) {
    S.labels[frame] = label;
    S.states[frame] = label ? "confirmed" : stateOfProposal(frame);
  }
  if (push) push(before);
  keepHistory();
  $("saved").textContent = "saving…";
  updateInfo(); drawTimeline(); draw();
  return true;
}

function stateOfProposal(i) {
  const p = S.proposals[i];
  return p ? (p[4] ? "uncertain" : "proposed") : "empty";
}

function onClick(e) {  // placed DOUBLE_CLICK_MS later, so that a double-click (fit) places nothing
  clearTimeout(S.clickTimer);
  if (e.detail > 1) { takeBackClick(); return; }
  const { x, y } = toImage(e.clientX, e.clientY), frame = S.current, { width, height } = S.meta;
  if (x < 0 || y < 0 || x > width || y > height) { message("outside the picture: no ball placed"); return; }
  S.clickTimer = setTimeout(() => place(frame, x, y), DOUBLE_CLICK_MS);
}

function place(frame, x, y) {
  const r = (v) => Math.round(v * 1000) / 1000;
  return change([{ frame, label: { visibility: S.visClass, x: r(x), y: r(y) } }],
                (before) => { newChange(before); S.clicked = { at: performance.now(), before }; });
}

function takeBackClick() {  // a slow double-click: its first click placed the ball already
  const c = S.clicked;
  S.clicked = null;
  if (!c || performance.now() - c.at > 1000 || S.undo[S.undo.length - 1] !== c.before) return;
  S.undo.pop();
  change(c.before, null);
}

function setVisibility(v) {  // 0: no ball here; 1-3: the class of the next clicks, and of this frame's ball label
  const i = S.current, lab = S.labels[i];
  if (v === 0) { message(`frame ${i}: no ball`); return change([{ frame: i, label: { visibility: 0, x: null, y: null } }]); }
  S.visClass = v;
  updateInfo();
  if (lab && lab.visibility > 0) {
    message(`frame ${i}: visibility ${v} (and the next clicks)`);
    return change([{ frame: i, label: { visibility: v, x: lab.x, y: lab.y } }]);
  }
  message(`visibility ${v} for the next clicks`);
}

async function confirmProposal(e) {  // an uncertain proposal: stop at it first, confirm on a later Enter
  const i = S.current, p = S.proposals[i];
  if (S.labels[i]) { go(i + 1); return; }
  if (!p) {
    const working = S.modelStatus === "loading" || S.modelStatus === "running";
    message(`frame ${i} has no proposal${working ? " yet" : ""}: click to place the ball, 0 for none`);
    return;
  }
  if (p[4]) {
    const looked = S.stopped && S.stopped.frame === i && performance.now() - S.stopped.at > LOOK_MS && !e.repeat;
    if (!looked) {
      if (!S.stopped || S.stopped.frame !== i) S.stopped = { frame: i, at: performance.now() };
      message(`frame ${i}: uncertain (${WHY[p[4]] || p[4]}): look, then Enter again to confirm, or click the ball`);
      return;
    }
  }
  const label = p[0] > 0 ? { visibility: 1, x: p[1], y: p[2] } : { visibility: 0, x: null, y: null };
  if (await change([{ frame: i, label }])) go(i + 1);
}

function interpolate() {  // fill the unlabelled frames around this one, between a labelled ball on each side
  const i = S.current, n = S.meta.frames;
  if (S.labels[i]) { message(`frame ${i} is labelled: press i on an unlabelled frame between two balls`); return; }
  let a = i - 1, b = i + 1;
  while (a >= 0 && !S.labels[a]) a--;
  while (b < n && !S.labels[b]) b++;
  if (a < 0 || b >= n) { message("interpolation needs a labelled ball before and after this frame"); return; }
  const A = S.labels[a], B = S.labels[b];
  if (!A.visibility || !B.visibility) { message(`no ball in frame ${A.visibility ? b : a}: nothing filled`); return; }
  const items = [], r = (v) => Math.round(v * 1000) / 1000;
  for (let k = a + 1; k < b; k++) {
    const t = (k - a) / (b - a);
    const x = r(A.x + t * (B.x - A.x)), y = r(A.y + t * (B.y - A.y));
    items.push({ frame: k, label: { visibility: 1, x, y, interpolated: true } });
  }
  message(`interpolated ${items.length} frames between ${a} and ${b}`);
  return change(items);
}

async function history(from, to, verb) {  // undo: from S.undo to S.redo; redo: the other way
  const last = from.pop();
  if (!last) { message(`nothing to ${verb}`); return; }
  message(`${verb}: frame${last.length > 1 ? "s" : ""} ${last.map((c) => c.frame).join(", ")}`);
  if (!(await change(last, (before) => to.push(before)))) from.push(last);
}

async function needing(back) {  // Shift+→ / Shift+←: the next / previous frame that needs a person
  const { frame } = await json(back ? `/api/previous?before=${S.current}` : `/api/next?after=${S.current}`);
  if (frame === null) { message("every frame is labelled"); return; }
  go(frame);
}

function toggleLoupe() {
  S.loupeOn = !S.loupeOn;
  message(S.loupeOn ? "loupe on" : "loupe off (l shows it again)");
  drawLoupe(S.bitmaps.get(S.current));
}

function togglePlay() {
  if (S.playing) { clearInterval(S.playing); S.playing = null; message("paused"); return; }
  const fps = Math.min(30, S.meta.fps || 25);
  message("playing (Space pauses)");
  S.playing = setInterval(() => {
    if (S.current >= S.meta.frames - 1) { togglePlay(); return; }
    if (S.bitmaps.has(S.current + 1)) go(S.current + 1);
  }, 1000 / fps);
}

// ------------------------------------------------------------------ input
function onKey(e) {
  if (!S.ready || e.target.tagName === "INPUT") return;
  const k = e.key, lower = k.toLowerCase(), ctrl = e.ctrlKey || e.metaKey;
  let handled = true;
  if ((k === "ArrowRight" || k === "ArrowLeft") && e.shiftKey) needing(k === "ArrowLeft");
  else if (k === "ArrowRight") go(S.current + 1);
  else if (k === "ArrowLeft") go(S.current - 1);
  else if (k === "Home") go(0);
  else if (k === "End") go(S.meta.frames - 1);
  else if (k >= "0" && k <= "3" && !ctrl) setVisibility(Number(k));
  else if (k === "Enter") confirmProposal(e);
  else if (k === " ") togglePlay();
  else if (k === "Backspace" || k === "Delete") change([{ frame: S.current, label: null }]);
  else if (ctrl && (lower === "y" || (lower === "z" && e.shiftKey))) history(S.redo, S.undo, "redo");
  else if (ctrl && lower === "z") history(S.undo, S.redo, "undo");
  else if (k === "i") interpolate();
  else if (lower === "l" && !ctrl) toggleLoupe();
  else handled = false;
  if (handled) e.preventDefault();
}

function onWheel(e) {
  e.preventDefault();
  const before = toImage(e.clientX, e.clientY), v = S.view;
  const s = Math.min(32, Math.max(0.05, v.s * Math.exp(-e.deltaY * 0.0015)));
  const r = view.getBoundingClientRect();
  S.view = { s, ox: before.x - (e.clientX - r.left) / s, oy: before.y - (e.clientY - r.top) / s };
  draw();
}

function setupInput() {
  document.addEventListener("keydown", onKey);
  view.addEventListener("wheel", onWheel, { passive: false });
  view.addEventListener("click", onClick);
  view.addEventListener("mousemove", (e) => {
    S.pointer = toImage(e.clientX, e.clientY); S.pointerAt = { x: e.clientX, y: e.clientY };
    drawLoupe(S.bitmaps.get(S.current));
  });
  view.addEventListener("mouseleave", () => { S.pointer = null; loupe.style.display = "none"; });
  view.addEventListener("dblclick", () => { clearTimeout(S.clickTimer); fit(); draw(); });
  timeline.addEventListener("click", (e) => go(frameAt(e)));
  timeline.addEventListener("mousemove", showHover);
  timeline.addEventListener("mouseleave", () => { hover.style.display = "none"; });
  window.addEventListener("resize", () => { fit(); draw(); drawTimeline(); });
}

// ------------------------------------------------------------------ server state
async function refresh() {
  const snap = await json("/api/labels");
  S.labels = snap.labels; S.proposals = snap.proposals; S.states = snap.states; S.revision = snap.revision;
  return snap;
}

async function poll() {
  try {
    const st = await json("/api/status");
    const m = st.model;
    S.modelStatus = m.status;
    $("model").textContent = modelText(st.model);
    $("model").title = st.model.name;
    $("saved").textContent = st.save_error ? `not saved: ${st.save_error}`
      : st.saved_revision >= st.revision ? "saved" : "saving…";
    if (st.revision !== S.revision) { await refresh(); updateInfo(); drawTimeline(); draw(); }
  } catch (e) { $("saved").textContent = `server unreachable (${e.message})`; }
  setTimeout(poll, 1000);
}

function modelText(m) {  // which model proposes (and whether by default), and how far it got
  if (m.status === "off") return "no model (--no-model)";
  const of = m.short ? ` of ${m.short}` : "";
  if (m.status === "cached") return `no model (--no-model): proposals${of} from an earlier run`;
  const which = `model ${m.short}${m.default ? " (default; --checkpoint to choose)" : ""}`;
  return m.status === "failed" ? `${which} failed: ${m.message}`
    : `${which}: ${m.status === "done" ? "proposals done" : `${m.status} ${m.done}/${m.total}`}`;
}

async function main() {
  S.meta = await json("/api/meta");
  $("name").textContent = S.meta.name;
  $("labels-path").textContent = `labels: ${S.meta.labels_path}`;
  $("keys").innerHTML = "";
  for (const [key, what] of S.meta.keys) {
    const row = $("keys").insertRow();
    row.insertCell().textContent = key; row.insertCell().textContent = what;
  }
  for (const note of S.meta.notes) { const li = document.createElement("li"); li.textContent = note; $("notes").appendChild(li); }
  const snap = await refresh();
  restoreHistory();
  setupInput();
  fit();
  S.ready = true;
  await go(snap.position || 0);
  poll();
}

window.tracknetLabel = { state: S, toClient, go };  // for the browser tests
main().catch((e) => message(`cannot start: ${e.message}`));
