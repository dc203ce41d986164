// The probing panel: pick a black box (a demo function or a model at a URL), an input (a vector, a
// sentence or a drawn digit), a method and a budget; send POST /probe (as a job with progress when
// the service runs jobs) and show the estimate as bars, highlighted words or a heat map.
// Plain browser JavaScript, loaded after playground.js (whose $, el, formatNumber and CUSTOM it uses).
'use strict';

const SIDE = 28; // the image input is a 28×28 digit, as in MNIST
const CELL = 8; // canvas pixels per image pixel (224 / 28)

const METHODS = {
  vector: [
    ['central', 'central differences (2n + 1 queries)'],
    ['forward', 'forward differences (n + 1 queries)'],
    ['spsa', 'SPSA (random ±1 directions)'],
    ['nes', 'NES (random Gaussian directions)'],
  ],
  text: [
    ['occlusion', 'occlusion (m + 1 queries)'],
    ['shapley', 'Shapley values (sampled orders)'],
  ],
  image: [
    ['occlusion', 'patch occlusion (1 query a patch)'],
    ['central', 'central differences (2 queries a patch)'],
    ['forward', 'forward differences (1 query a patch)'],
    ['spsa', 'SPSA (random ±1 directions)'],
    ['nes', 'NES (random Gaussian directions)'],
  ],
};

const DEMOS = [
  {
    name: 'Linear scorer sum(w * x)',
    note: 'Its gradient is w, so the estimate can be checked by eye.',
    expr: 'w = [0.5, -1, 2, 0.25, -0.75, 1.5]\nsum(w * x)',
    input: 'vector',
    vector: '[1, 2, 3, 4, 5, 6]',
    method: 'central',
  },
  {
    name: 'Small tanh network (README)',
    note: 'tanh(W @ x), its second output, estimated by SPSA from 200 queries.',
    expr: 'W = [[1, 2], [3, -1]]; tanh(W @ x)',
    input: 'vector',
    vector: '[0.1, 0.2]',
    output: 1,
    method: 'spsa',
    budget: 200,
  },
  {
    name: 'Image: ink in the centre',
    note: 'sum(x[7:21, 7:21]^2): the gradient is 2x in the centre square, 0 outside.',
    expr: 'sum(x[7:21, 7:21]^2)',
    input: 'image',
    method: 'central',
  },
  {
    name: 'Image: left minus right half',
    note: 'sum(x[:, :14]) - sum(x[:, 14:]): ink on the left raises f, on the right lowers it.',
    expr: 'sum(x[:, :14]) - sum(x[:, 14:])',
    input: 'image',
    method: 'occlusion',
    patch: 4,
  },
];

// --- the drawn digit -----------------------------------------------------------------------

/** Ink per pixel, row-major, 0 (paper) to 1 (ink), as MNIST's digits are. */
const ink = new Float64Array(SIDE * SIDE);
const pen = { row: 14, column: 14, shown: false };

function paint(row, column, amount) {
  // A soft round brush, like a pen stroke scanned at 28×28: full at the centre, half beside it.
  for (let dr = -1; dr <= 1; dr++) {
    for (let dc = -1; dc <= 1; dc++) {
      const r = row + dr;
      const c = column + dc;
      if (r < 0 || r >= SIDE || c < 0 || c >= SIDE) continue;
      const weight = dr === 0 && dc === 0 ? 1 : dr === 0 || dc === 0 ? 0.5 : 0.2;
      ink[r * SIDE + c] = Math.min(1, Math.max(ink[r * SIDE + c], amount * weight));
    }
  }
}

function stroke(from, to) {
  const steps = Math.max(Math.abs(to[0] - from[0]), Math.abs(to[1] - from[1]), 1);
  for (let s = 0; s <= steps; s++) paint(Math.round(from[0] + ((to[0] - from[0]) * s) / steps), Math.round(from[1] + ((to[1] - from[1]) * s) / steps), 1);
}

/** A 7, drawn in two strokes. */
function sampleDigit() {
  ink.fill(0);
  stroke([6, 8], [6, 20]);
  stroke([6, 20], [22, 12]);
  stroke([14, 12], [14, 19]);
}

function drawDigit() {
  const canvas = $('probe-canvas');
  const g = canvas.getContext('2d');
  g.fillStyle = '#ffffff';
  g.fillRect(0, 0, canvas.width, canvas.height);
  for (let p = 0; p < ink.length; p++) {
    if (ink[p] === 0) continue;
    const level = Math.round(255 * (1 - ink[p]));
    g.fillStyle = `rgb(${level}, ${level}, ${level})`;
    g.fillRect((p % SIDE) * CELL, Math.floor(p / SIDE) * CELL, CELL, CELL);
  }
  if (pen.shown) {
    g.strokeStyle = '#2563eb';
    g.lineWidth = 2;
    g.strokeRect(pen.column * CELL + 1, pen.row * CELL + 1, CELL - 2, CELL - 2);
  }
  $('probe-canvas-pen').textContent = pen.shown ? `pen at row ${pen.row}, column ${pen.column}` : '';
}

function cellAt(canvas, event) {
  const box = canvas.getBoundingClientRect();
  const column = Math.floor(((event.clientX - box.left) / box.width) * SIDE);
  const row = Math.floor(((event.clientY - box.top) / box.height) * SIDE);
  return row >= 0 && row < SIDE && column >= 0 && column < SIDE ? { row, column } : undefined;
}

function setUpCanvas() {
  const canvas = $('probe-canvas');
  let last;
  const draw = (event) => {
    const cell = cellAt(canvas, event);
    if (!cell) return;
    if (last) stroke([last.row, last.column], [cell.row, cell.column]);
    else paint(cell.row, cell.column, 1);
    last = cell;
    drawDigit();
  };
  canvas.addEventListener('pointerdown', (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = undefined;
    draw(event);
  });
  canvas.addEventListener('pointermove', (event) => {
    if (event.buttons & 1) draw(event);
  });
  canvas.addEventListener('pointerup', () => (last = undefined));
  canvas.addEventListener('focus', () => {
    pen.shown = true;
    drawDigit();
  });
  canvas.addEventListener('blur', () => {
    pen.shown = false;
    drawDigit();
  });
  const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
  canvas.addEventListener('keydown', (event) => {
    if (event.key in moves) {
      const [dr, dc] = moves[event.key];
      pen.row = Math.min(SIDE - 1, Math.max(0, pen.row + dr));
      pen.column = Math.min(SIDE - 1, Math.max(0, pen.column + dc));
      // Shift + arrow draws as it moves.
      if (event.shiftKey) paint(pen.row, pen.column, 1);
    } else if (event.key === ' ' || event.key === 'Enter') {
      paint(pen.row, pen.column, 1);
    } else if (event.key === 'Delete' || event.key === 'Backspace') {
      ink[pen.row * SIDE + pen.column] = 0;
    } else {
      return;
    }
    event.preventDefault();
    drawDigit();
  });
  $('probe-sample').addEventListener('click', () => {
    sampleDigit();
    drawDigit();
  });
  $('probe-clear').addEventListener('click', () => {
    ink.fill(0);
    drawDigit();
  });
}

function imageRows() {
  const rows = [];
  for (let r = 0; r < SIDE; r++) rows.push(Array.from(ink.subarray(r * SIDE, (r + 1) * SIDE)));
  return rows;
}

// --- the form ------------------------------------------------------------------------------

const checked = (name) => document.querySelector(`input[name="${name}"]:checked`).value;

function setChecked(name, value) {
  document.querySelector(`input[name="${name}"][value="${value}"]`).checked = true;
}

function showTargetFields() {
  const url = checked('probe-target') === 'url';
  $('probe-target-expr').hidden = url;
  $('probe-target-url').hidden = !url;
}

function showInputFields() {
  const input = checked('probe-input');
  for (const kind of ['vector', 'text', 'image']) $(`probe-input-${kind}`).hidden = kind !== input;
  const select = $('probe-method');
  const previous = select.value;
  select.replaceChildren(...METHODS[input].map(([value, label]) => new Option(label, value)));
  if (METHODS[input].some(([value]) => value === previous)) select.value = previous;
  showMethodFields();
}

function showMethodFields() {
  const input = checked('probe-input');
  const method = $('probe-method').value;
  const random = method === 'spsa' || method === 'nes';
  // Low-resolution directions take one cell per patch; pixel and DCT directions need no patch.
  $('probe-patch-row').hidden = input !== 'image' || (random && $('probe-basis').value !== 'lowres');
  $('probe-basis-row').hidden = !random;
  for (const option of $('probe-basis').options) if (option.value !== 'pixel') option.disabled = input !== 'image';
  if (input !== 'image') $('probe-basis').value = 'pixel';
  $('probe-samples-row').hidden = method !== 'shapley';
  $('probe-noise-row').hidden = !['forward', 'central', 'spsa', 'nes'].includes(method);
  $('probe-baseline-row').hidden = input !== 'image' || method !== 'occlusion';
  const notes = {
    occlusion: input === 'text' ? "A word's score is f(sentence) − f(sentence without it)." : "A pixel's score is the mean drop of f when the patches covering it are blanked.",
    shapley: "A word's score is its mean marginal contribution over random orders; they add up to f(all) − f(none).",
    central: 'Exact for a linear model, up to rounding.',
    forward: 'Half the queries of central, a larger error.',
    spsa: 'Cheaper than n queries; the error shrinks like 1/√directions.',
    nes: 'Cheaper than n queries; the error shrinks like 1/√directions.',
  };
  $('probe-method-note').textContent = notes[method] || '';
}

/**
 * The demo models of `npm run demo:model` where this server looks for them (its DEMO_MODEL_HOST,
 * DEMO_MODEL_PORT and DEMO_TEXT_PORT), read from the page: `{ mnist, text }`, each
 * `{ url, origin, body, outputPath, allowed }`, allowed saying whether PROBE_ALLOWED_ORIGINS lists it.
 */
function demoModels() {
  try {
    return JSON.parse(document.querySelector('meta[name="adjoint-demos"]').content);
  } catch {
    return {};
  }
}

/** Fills the URL fields with a demo model, and says what to do when the server may not query it. */
function useDemoModel(demo) {
  if (!demo) return;
  $('probe-url').value = demo.url;
  $('probe-body').value = demo.body;
  $('probe-pointer').value = demo.outputPath;
  $('probe-demo-hint').textContent = demo.allowed
    ? `${demo.url}, served by npm run demo:model`
    : `${demo.url}: this server may not query it; start it with PROBE_ALLOWED_ORIGINS=${demo.origin} (npm run demo:model prints the whole command)`;
}

/** The text demo model: a sentence's words in, a sentiment logit out. */
function useTextDemo() {
  useDemoModel(demoModels().text);
  setChecked('probe-input', 'text');
  showInputFields();
  $('probe-output').value = '0';
}

/** The MNIST demo model: 28×28 pixels in, ten logits out. */
function useMnistDemo() {
  useDemoModel(demoModels().mnist);
  setChecked('probe-input', 'image');
  showInputFields();
  if (ink.every((v) => v === 0)) sampleDigit();
  drawDigit();
  // The sample is a 7: its logit is the one whose reasons are worth seeing.
  $('probe-output').value = '7';
}

/** The demo menu names the function in the field, or "Custom" once it was edited. */
function syncDemoMenu() {
  const i = DEMOS.findIndex((demo) => demo.expr === $('probe-expr').value);
  $('probe-demo').value = i < 0 ? CUSTOM : String(i);
  showDemoNote();
}

/** The menu's names are short (so the menu fits its column); what the chosen demo shows is said under it. */
function showDemoNote() {
  const demo = DEMOS[Number($('probe-demo').value)];
  $('probe-demo-note').textContent = demo ? demo.note : 'Your own function of x.';
}

function loadDemo(demo) {
  setChecked('probe-target', 'expr');
  $('probe-expr').value = demo.expr;
  setChecked('probe-input', demo.input);
  if (demo.vector) $('probe-vector').value = demo.vector;
  if (demo.input === 'image' && ink.every((v) => v === 0)) sampleDigit();
  $('probe-output').value = String(demo.output || 0);
  $('probe-budget').value = demo.budget ? String(demo.budget) : '';
  $('probe-patch').value = String(demo.patch || 1);
  showTargetFields();
  showInputFields();
  $('probe-method').value = demo.method;
  showMethodFields();
  drawDigit();
  syncDemoMenu();
}

function integerField(id) {
  const text = $(id).value.trim();
  return text === '' ? undefined : Number(text);
}

/** The request the form describes, or throws an Error saying what to fix. */
function probeRequest() {
  const input = checked('probe-input');
  const method = $('probe-method').value;
  const request = { method };
  if (checked('probe-target') === 'url') {
    const url = $('probe-url').value.trim();
    if (!url) throw new Error('Type the model’s URL (http:// or https://).');
    let body;
    try {
      body = JSON.parse($('probe-body').value);
    } catch (e) {
      throw new Error(`The request body is not JSON: ${e instanceof Error ? e.message : e}`);
    }
    request.target = { url, body, outputPath: $('probe-pointer').value.trim() };
  } else {
    if (input === 'text') throw new Error('A function of x takes numbers, not words: pick “a model at a URL” and “Text demo” (the sentiment model of npm run demo:model) to probe a sentence.');
    request.target = { expr: $('probe-expr').value };
  }
  if (input === 'vector') {
    try {
      request.at = JSON.parse($('probe-vector').value);
    } catch (e) {
      throw new Error(`The point is not JSON: ${e instanceof Error ? e.message : e}`);
    }
  } else if (input === 'text') {
    request.at = $('probe-text').value.split(/\s+/).filter((word) => word !== '');
    if (request.at.length === 0) throw new Error('Type a sentence of at least one word.');
  } else {
    if (ink.every((v) => v === 0)) throw new Error('Draw a digit first (or press “Sample digit”).');
    request.at = $('probe-flatten').checked ? Array.from(ink) : imageRows();
    const patch = integerField('probe-patch') || 1;
    const basis = method === 'spsa' || method === 'nes' ? $('probe-basis').value : 'pixel';
    // Groups of pixels (and bases over the image) need the image declared; single pixels are plain coordinates.
    if (method === 'occlusion' || ((method === 'central' || method === 'forward') && patch > 1)) {
      request.image = { shape: [SIDE, SIDE], patch: [patch, patch] };
      if (method === 'occlusion') request.image.baseline = $('probe-baseline').value;
    } else if (basis !== 'pixel') {
      request.image = basis === 'lowres' ? { shape: [SIDE, SIDE], patch: [patch, patch] } : { shape: [SIDE, SIDE] };
      request.basis = basis;
    }
    // The service draws its picture of the map only for an input declared an image.
    if ($('probe-png').checked) {
      request.image = request.image || { shape: [SIDE, SIDE] };
      request.format = 'png';
    }
  }
  if (method === 'spsa' || method === 'nes') {
    if ($('probe-prior').value !== 'none') request.prior = $('probe-prior').value;
  }
  const repeats = integerField('probe-repeats');
  if (repeats !== undefined && ['forward', 'central', 'spsa', 'nes'].includes(method)) request.noise = { repeats };
  if (method === 'shapley') {
    const samples = integerField('probe-samples');
    if (samples !== undefined) request.samples = samples;
  }
  const output = integerField('probe-output');
  if (output) request.output = output;
  const budget = integerField('probe-budget');
  if (budget !== undefined) request.budget = budget;
  const seed = integerField('probe-seed');
  if (seed) request.seed = seed;
  return request;
}

// --- talking to the service: a job with progress, or one request -----------------------------

async function answerOf(res) {
  const type = res.headers.get('content-type') || '';
  return type.includes('json') ? res.json() : res.text();
}

/** A job's answer or problem may come as JSON text. */
const parsed = (v) => (typeof v === 'string' ? JSON.parse(v) : v);

let current; // the running probe: { id?, controller, timer }

/**
 * Runs the probe as a job when the service has POST /jobs (progress as it goes), else as one
 * POST /probe (an indeterminate bar and the time elapsed). Resolves { ok, status, payload }.
 */
async function runProbe(request, progress) {
  const submitted = await fetch('/jobs', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'probe', request }),
    signal: current.controller.signal,
  });
  if (submitted.status === 404 || submitted.status === 405) {
    // Hanging up stops the probe on the server (no more queries), so Cancel aborts the request.
    $('probe-cancel').hidden = false;
    const res = await fetch('/probe', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request), signal: current.controller.signal });
    return { ok: res.ok, status: res.status, payload: await answerOf(res) };
  }
  const job = await answerOf(submitted);
  if (!submitted.ok) return { ok: false, status: submitted.status, payload: job };
  const location = submitted.headers.get('location') || `/jobs/${job.id}`;
  current.location = location;
  $('probe-cancel').hidden = false;
  return followJob(location, job, progress);
}

/** Follows a job to its end: server-sent events as it goes, and a poll every second in case the stream breaks. */
function followJob(location, first, progress) {
  return new Promise((resolve, reject) => {
    let done = false;
    let events;
    const finish = (view) => {
      if (done) return;
      done = true;
      clearInterval(poll);
      if (events) events.close();
      if (view.state === 'succeeded') resolve({ ok: true, status: 200, payload: parsed(view.result) });
      else if (view.state === 'cancelled') resolve({ ok: false, cancelled: true, queries: (view.progress && view.progress.queries) || 0 });
      else {
        const problem = parsed(view.problem) || { title: 'The job failed' };
        resolve({ ok: false, status: problem.status || 500, payload: problem });
      }
    };
    const update = (view) => {
      if (view.progress) progress(view.progress);
      if (['succeeded', 'failed', 'cancelled'].includes(view.state)) {
        // The event may carry only the state; the job itself carries the answer.
        if (view.result !== undefined || view.problem !== undefined || view.state === 'cancelled') finish(view);
        else check();
      }
    };
    const check = () =>
      fetch(location, { signal: current.controller.signal })
        .then(answerOf)
        .then((view) => !done && update(view))
        .catch((error) => {
          if (!done) {
            done = true;
            clearInterval(poll);
            if (events) events.close();
            reject(error);
          }
        });
    const poll = setInterval(check, 1000);
    update(first);
    if (typeof EventSource === 'function') {
      events = new EventSource(`${location}/events`);
      const onEvent = (message) => {
        try {
          update(JSON.parse(message.data));
        } catch {
          // An event that is not a job view (a comment, a keep-alive): the poll carries on.
        }
      };
      events.onmessage = onEvent;
      // GET /jobs/{id}/events names each event by the job's state; its data is the whole job.
      for (const name of ['queued', 'running', 'succeeded', 'failed', 'cancelled']) events.addEventListener(name, onEvent);
      events.onerror = () => events.close();
    }
  });
}

function showProgress(p) {
  const bar = $('probe-progress');
  if (p.total > 0) {
    bar.max = p.total;
    bar.value = p.done;
  }
  const queries = p.queries !== undefined ? ` · ${p.queries} queries sent` : '';
  $('probe-status').textContent = `running: ${p.done} of ${p.total}${queries} · ${elapsed()}`;
}

function elapsed() {
  return `${((performance.now() - current.started) / 1000).toFixed(1)} s`;
}

/** Hides the last answer (its maps, picture, legend and pixel readout), so nothing stale shows under a new run. */
function clearProbeResult() {
  $('probe-result').hidden = true;
  for (const id of ['probe-bars', 'probe-words', 'probe-maps', 'probe-legend', 'probe-map-png-figure']) $(id).hidden = true;
  $('probe-summary').textContent = '';
  $('probe-map-png').removeAttribute('src');
  for (const id of ['probe-map-estimate', 'probe-map-exact']) mapValues.delete($(id));
  resetReadout();
}

/** A cancelled probe is no error: a neutral line in the status, no red box. */
function showCancelled(text) {
  clearProbeError();
  clearProbeResult();
  const status = $('probe-status');
  status.textContent = text;
  status.classList.add('cancelled');
}

async function submitProbe() {
  clearProbeError();
  clearProbeResult();
  $('probe-status').classList.remove('cancelled');
  let request;
  try {
    request = probeRequest();
  } catch (e) {
    showProbeError('The form is not complete', e instanceof Error ? e.message : String(e));
    return;
  }
  current = { controller: new AbortController(), started: performance.now(), jobProgress: false };
  const mine = current;
  const bar = $('probe-progress');
  bar.removeAttribute('value'); // indeterminate until a job says how far it is
  bar.hidden = false;
  $('probe-run').disabled = true;
  $('probe-status').textContent = 'running…';
  document.body.dataset.probe = 'busy';
  const timer = setInterval(() => {
    if (!mine.jobProgress) $('probe-status').textContent = `running… ${elapsed()}`;
  }, 200);
  try {
    const result = await runProbe(request, (p) => {
      mine.jobProgress = true;
      showProgress(p);
    });
    if (mine !== current) return;
    if (result.ok) {
      showProbeAnswer(result.payload, request);
      $('probe-status').textContent = `done in ${elapsed()}`;
    } else if (result.cancelled) {
      showCancelled(`cancelled after ${result.queries} queries · ${elapsed()}`);
    } else {
      showProbeProblem(result.status, result.payload, request);
      $('probe-status').textContent = '';
    }
  } catch (e) {
    if (mine !== current) return;
    if (mine.controller.signal.aborted) showCancelled(`cancelled · ${elapsed()}`);
    else {
      showProbeError('The service did not answer', e instanceof Error ? e.message : String(e));
      $('probe-status').textContent = '';
    }
  } finally {
    clearInterval(timer);
    if (mine === current) {
      bar.hidden = true;
      $('probe-run').disabled = false;
      $('probe-cancel').hidden = true;
      document.body.dataset.probe = 'done';
    }
  }
}

async function cancelProbe() {
  if (!current) return;
  $('probe-status').textContent = 'cancelling…';
  if (current.location) await fetch(current.location, { method: 'DELETE' }).catch(() => undefined);
  else current.controller.abort();
}

// --- problems --------------------------------------------------------------------------------

function clearProbeError() {
  $('probe-error').hidden = true;
  $('probe-error-hint').hidden = true;
}

function showProbeError(title, message, hint) {
  $('probe-error-title').textContent = title;
  $('probe-error-message').textContent = message;
  $('probe-error-hint').textContent = hint || '';
  $('probe-error-hint').hidden = !hint;
  $('probe-error').hidden = false;
  $('probe-result').hidden = true;
}

/** What to do about a problem the service answered, in the panel's words. */
function problemHint(status, problem, request) {
  if (problem.code === 'probe_target_forbidden') {
    let origin = '';
    try {
      origin = new URL(request.target.url).origin;
    } catch {
      // The message already says the URL does not parse.
    }
    return `This server queries only the origins its operator listed in PROBE_ALLOWED_ORIGINS${origin ? `; ask for ${origin} to be added` : ''}, or pick a demo model.`;
  }
  if (problem.code === 'limit_exceeded') return 'The plan does not fit the budget or this server’s limits: change what the message names.';
  if (problem.code === 'rate_limited') return 'This client has sent its queries for the minute; try again shortly.';
  if (status === 401) return 'This server asks for an API key, which the playground cannot send.';
  if (problem.code === 'probe_target_error' || problem.code === 'probe_timeout') return `The model failed to answer${problem.queries !== undefined ? ` after ${problem.queries} queries` : ''}.`;
  return undefined;
}

function showProbeProblem(status, problem, request) {
  if (typeof problem !== 'object' || problem === null) {
    showProbeError(`Error ${status}`, String(problem));
    return;
  }
  const errors = (problem.errors || []).filter((e) => e.path);
  const detail = problem.detail || 'The probe failed';
  const more = errors.filter((e) => !detail.includes(e.message)).map((e) => `${e.path}: ${e.message}`);
  const message = more.length > 0 ? `${detail} (${more.join('; ')})` : detail;
  const title = `${status ? `${status} ` : ''}${problem.title || 'Error'}${problem.code ? ` (${problem.code})` : ''}`;
  showProbeError(title, message, problemHint(status, problem, request));
  // The cursor goes to the field the problem is about, so it can be changed in place.
  const field = errors.length > 0 ? fieldOf(errors[0].path) : undefined;
  if (field && !field.closest('[hidden]')) field.focus();
}

/** The form's field for a request path such as "budget" or "target.url". */
function fieldOf(path) {
  const head = String(path).split(/[.[/]/)[0];
  const ids = { budget: 'probe-budget', output: 'probe-output', samples: 'probe-samples', seed: 'probe-seed', noise: 'probe-repeats', image: 'probe-patch' };
  if (head === 'target') return $(String(path).includes('expr') ? 'probe-expr' : String(path).includes('body') ? 'probe-body' : String(path).includes('outputPath') ? 'probe-pointer' : 'probe-url');
  if (head === 'at') return $({ vector: 'probe-vector', text: 'probe-text', image: 'probe-canvas' }[checked('probe-input')]);
  return ids[head] ? $(ids[head]) : undefined;
}

// --- showing the answer -------------------------------------------------------------------

/** A diverging colour for t in [-1, 1]: blue below 0, white at 0, red above. */
function divergingColour(t) {
  const clamped = Math.max(-1, Math.min(1, t));
  const [r, g, b] = clamped >= 0 ? [220, 38, 38] : [37, 99, 235];
  const a = Math.abs(clamped);
  const mix = (c) => Math.round(255 + (c - 255) * a);
  return `rgb(${mix(r)}, ${mix(g)}, ${mix(b)})`;
}

const flat = (v) => (Array.isArray(v) ? v.flat(Infinity) : [v]).map(Number);

function maxAbs(values) {
  return values.reduce((m, v) => (Number.isFinite(v) ? Math.max(m, Math.abs(v)) : m), 0);
}

function showLegend(scale, text) {
  $('probe-legend-low').textContent = formatNumber(-scale, 3);
  $('probe-legend-high').textContent = `+${formatNumber(scale, 3)}`;
  $('probe-legend-text').textContent = text;
  $('probe-legend').hidden = false;
}

function showProbeAnswer(answer, request) {
  $('probe-result').hidden = false;
  for (const id of ['probe-bars', 'probe-words', 'probe-maps', 'probe-legend']) $(id).hidden = true;
  const parts = [`${answer.method}`, `f(x) = ${formatNumber(answer.value, 6)}`, `${answer.queries} queries spent${request.budget ? ` of a budget of ${request.budget}` : ''}`];
  if (answer.noise !== undefined) parts.push(`output noise σ = ${formatNumber(answer.noise.sigma, 3)} from ${answer.noise.repeats} repeats`);
  if (answer.epsilon !== undefined) parts.push(`step ε = ${formatNumber(answer.epsilon, 3)}`);
  if (answer.groups !== undefined) parts.push(`${answer.groups} groups`);
  if (answer.directions !== undefined) parts.push(`${answer.directions} directions`);
  if (answer.basis !== undefined) parts.push(`${answer.basis.name} basis of ${answer.basis.size}`);
  if (answer.prior !== undefined && answer.prior !== 'none') parts.push(`${answer.prior} prior`);
  if (answer.samples !== undefined) parts.push(`${answer.samples} permutations`);
  if (answer.cacheHits !== undefined) parts.push(`${answer.cacheHits} coalitions from the cache`);
  if (answer.cosine !== undefined) parts.push(`cosine to the exact gradient ${formatNumber(answer.cosine, 4)}`);
  $('probe-summary').textContent = parts.join(' · ');
  const values = answer.gradient !== undefined ? answer.gradient : answer.scores;
  if (answer.efficiency !== undefined) {
    const e = answer.efficiency;
    $('probe-summary').append(
      el('br'),
      el('span', `Efficiency: the scores add up to ${formatNumber(e.sum, 8)}; f(all) − f(none) = ${formatNumber(answer.value, 6)} − ${formatNumber(answer.baselineValue, 6)} = ${formatNumber(e.expected, 8)} (gap ${formatNumber(e.gap, 2)})`, 'hint'),
    );
  }
  if (checked('probe-input') === 'text') showWords(request.at, answer.scores, answer.stderr);
  else if (checked('probe-input') === 'image') {
    showMaps(values, answer.exact, answer.method);
    showPicture(answer.png, answer.colourScale);
  }
  else showBars(flat(values), answer.stderr === undefined ? undefined : flat(answer.stderr), answer.exact === undefined ? undefined : flat(answer.exact));
}

/** One bar per coordinate, from a centre line: the estimate, ± its standard error, and the exact value as a tick. */
function showBars(estimate, stderr, exact) {
  const box = $('probe-bars');
  const scale = maxAbs([...estimate, ...(exact || [])]) || 1;
  const table = el('table');
  const head = el('tr');
  for (const title of ['coordinate', 'estimate', '', ...(stderr ? ['± std. error'] : []), ...(exact ? ['exact'] : [])]) head.append(el('th', title));
  const thead = el('thead');
  thead.append(head);
  const tbody = el('tbody');
  estimate.forEach((v, i) => {
    const row = el('tr');
    const track = el('div', undefined, 'track');
    const bar = el('div', undefined, v >= 0 ? 'bar positive' : 'bar negative');
    // The bar grows from the centre: half the track is the largest magnitude.
    bar.style.width = `${(50 * Math.min(Math.abs(v), scale)) / scale}%`;
    bar.style.left = v >= 0 ? '50%' : `${50 - (50 * Math.min(Math.abs(v), scale)) / scale}%`;
    track.append(bar);
    if (exact) {
      const tick = el('div', undefined, 'tick');
      tick.style.left = `${50 + (50 * exact[i]) / scale}%`;
      tick.title = `exact ${formatNumber(exact[i], 6)}`;
      track.append(tick);
    }
    const cell = el('td');
    cell.append(track);
    row.append(el('td', `x[${i}]`, 'id'), el('td', formatNumber(v, 6), 'num'), cell);
    if (stderr) row.append(el('td', formatNumber(stderr[i], 2), 'num'));
    if (exact) row.append(el('td', formatNumber(exact[i], 6), 'num'));
    tbody.append(row);
  });
  table.append(thead, tbody);
  box.replaceChildren(table);
  if (exact) box.append(el('p', 'The dark tick on each bar is the exact value (reverse mode).', 'hint'));
  box.hidden = false;
}

/** The sentence with each word coloured by its score; the number in its title and for screen readers. */
function showWords(tokens, scores, stderr) {
  const scale = maxAbs(scores) || 1;
  const sentence = $('probe-sentence');
  sentence.replaceChildren();
  tokens.forEach((token, i) => {
    const word = el('mark', String(token), 'word');
    word.style.backgroundColor = divergingColour(scores[i] / scale);
    const spread = stderr ? ` ± ${formatNumber(stderr[i], 2)}` : '';
    word.title = `${token}: ${formatNumber(scores[i], 4)}${spread}`;
    word.dataset.score = String(scores[i]);
    word.append(el('span', ` (${formatNumber(scores[i], 3)}${spread})`, 'sr-only'));
    sentence.append(word, document.createTextNode(' '));
  });
  const table = el('table');
  const head = el('tr');
  for (const title of ['word', 'score', ...(stderr ? ['± std. error'] : [])]) head.append(el('th', title));
  const thead = el('thead');
  thead.append(head);
  const tbody = el('tbody');
  tokens.forEach((token, i) => {
    const row = el('tr');
    row.append(el('td', String(token), 'id'), el('td', formatNumber(scores[i], 6), 'num'));
    if (stderr) row.append(el('td', formatNumber(stderr[i], 2), 'num'));
    tbody.append(row);
  });
  table.append(thead, tbody);
  $('probe-word-table').replaceChildren(table);
  $('probe-words').hidden = false;
  // The legend sits right under what it explains: the sentence here, the maps for an image.
  $('probe-sentence').after($('probe-legend'));
  showLegend(scale, 'a word’s score: red raises the logit, blue lowers it');
}

/** A map (28×28 values, or 784) on a canvas over the drawn digit, coloured on a shared scale. */
function drawMap(canvas, values, scale) {
  const g = canvas.getContext('2d');
  for (let p = 0; p < SIDE * SIDE; p++) {
    g.fillStyle = divergingColour(values[p] / scale);
    g.fillRect((p % SIDE) * CELL, Math.floor(p / SIDE) * CELL, CELL, CELL);
    // The digit shows through as a grey outline of each inked pixel.
    if (ink[p] > 0) {
      g.strokeStyle = `rgba(15, 23, 42, ${0.15 + 0.45 * ink[p]})`;
      g.lineWidth = 1;
      g.strokeRect((p % SIDE) * CELL + 0.5, Math.floor(p / SIDE) * CELL + 0.5, CELL - 1, CELL - 1);
    }
  }
  canvas.dataset.scale = String(scale);
  mapValues.set(canvas, values);
}

const mapValues = new WeakMap();

function showMaps(estimate, exact, method) {
  const values = flat(estimate);
  const exactValues = exact === undefined ? undefined : flat(exact);
  // One scale for both maps, so their colours compare.
  const scale = maxAbs([...values, ...(exactValues || [])]) || 1;
  const input = $('probe-map-input');
  const g = input.getContext('2d');
  g.drawImage($('probe-canvas'), 0, 0);
  drawMap($('probe-map-estimate'), values, scale);
  $('probe-map-estimate').dataset.method = method;
  $('probe-map-estimate-caption').textContent = method === 'occlusion' ? 'occlusion scores' : `estimate (${method})`;
  $('probe-map-exact-figure').hidden = exactValues === undefined;
  if (exactValues) drawMap($('probe-map-exact'), exactValues, scale);
  else mapValues.delete($('probe-map-exact'));
  $('probe-maps').hidden = false;
  // A map that has the keyboard's focus reads its pixel again, now from the new values; else the readout starts afresh.
  const focused = document.activeElement;
  if (focused && mapValues.has(focused)) readPixel(focused, mapCursor.row, mapCursor.column);
  else resetReadout();
  $('probe-maps').after($('probe-legend'));
  showLegend(scale, method === 'occlusion' ? 'how much f drops when the pixel is blanked' : '∂f/∂pixel: red raises the logit, blue lowers it');
}

/** The service's own PNG of the map (format: "png"), beside the maps drawn here, with its colour bar's ends. */
function showPicture(png, scale) {
  const figure = $('probe-map-png-figure');
  figure.hidden = png === undefined;
  if (png === undefined) return;
  $('probe-map-png').src = `data:image/png;base64,${png}`;
  $('probe-map-png-caption').textContent = scale ? `the service's PNG (${scale.kind}, ${formatNumber(scale.min, 3)} to ${formatNumber(scale.max, 3)})` : "the service's PNG";
}

/** The pixel the keyboard reads on the maps (arrow keys on a focused map). */
const mapCursor = { row: 14, column: 14 };

const READOUT_PROMPT = 'Point at a map (or focus it and use the arrow keys) to read a pixel\'s value.';

/** The readout names no pixel until one is pointed at on the maps now shown. */
function resetReadout() {
  $('probe-map-readout').textContent = READOUT_PROMPT;
}

function readPixel(canvas, row, column) {
  const values = mapValues.get(canvas);
  if (!values) return;
  const name = canvas.id === 'probe-map-exact' ? 'exact' : canvas.dataset.method === 'occlusion' ? 'score' : 'estimate';
  $('probe-map-readout').textContent = `row ${row}, column ${column}: ${name} ${formatNumber(values[row * SIDE + column], 6)}`;
}

function readout(event) {
  const cell = cellAt(event.currentTarget, event);
  if (cell) readPixel(event.currentTarget, cell.row, cell.column);
}

/** Arrow keys move the cursor on a focused map; it is drawn as a dark square and read out. */
function readoutByKey(event) {
  const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
  const canvas = event.currentTarget;
  if (event.type === 'keydown') {
    if (!(event.key in moves)) return;
    event.preventDefault();
    const [dr, dc] = moves[event.key];
    mapCursor.row = Math.min(SIDE - 1, Math.max(0, mapCursor.row + dr));
    mapCursor.column = Math.min(SIDE - 1, Math.max(0, mapCursor.column + dc));
  }
  const values = mapValues.get(canvas);
  if (!values) return;
  drawMap(canvas, values, Number(canvas.dataset.scale));
  if (event.type !== 'blur') {
    const g = canvas.getContext('2d');
    g.strokeStyle = '#0f172a';
    g.lineWidth = 2;
    g.strokeRect(mapCursor.column * CELL + 1, mapCursor.row * CELL + 1, CELL - 2, CELL - 2);
    readPixel(canvas, mapCursor.row, mapCursor.column);
  }
}

// --- wiring ------------------------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  const demos = $('probe-demo');
  DEMOS.forEach((demo, i) => demos.append(new Option(demo.name, String(i))));
  const custom = new Option('Custom (your own function)', CUSTOM);
  custom.disabled = true;
  demos.append(custom);
  const note = el('p', '', 'hint');
  note.id = 'probe-demo-note';
  demos.after(note);
  $('probe-expr').addEventListener('input', syncDemoMenu);
  demos.addEventListener('change', () => loadDemo(DEMOS[Number(demos.value)]));
  for (const radio of document.querySelectorAll('input[name="probe-target"]')) radio.addEventListener('change', showTargetFields);
  for (const radio of document.querySelectorAll('input[name="probe-input"]')) radio.addEventListener('change', showInputFields);
  $('probe-method').addEventListener('change', showMethodFields);
  $('probe-basis').addEventListener('change', showMethodFields);
  $('probe-form').addEventListener('submit', (event) => {
    event.preventDefault();
    submitProbe();
  });
  $('probe-cancel').addEventListener('click', cancelProbe);
  $('probe-mnist').addEventListener('click', useMnistDemo);
  $('probe-sentiment').addEventListener('click', useTextDemo);
  // An example address only (the page itself names no other origin, so it is set here).
  $('probe-url').placeholder = (demoModels().mnist || {}).url || 'http://model.example/predict';
  for (const id of ['probe-map-estimate', 'probe-map-exact']) {
    $(id).addEventListener('pointermove', readout);
    for (const type of ['keydown', 'focus', 'blur']) $(id).addEventListener(type, readoutByKey);
  }
  $('probe-text').value = 'not a good film , but the actors are wonderful';
  setUpCanvas();
  loadDemo(DEMOS[0]);
});
