// The playground: send the function and the point to the service, show what comes back.
// Plain browser JavaScript, no build step; every piece of text goes in through textContent.
'use strict';

const EXAMPLES = [
  {
    name: 'Lecture 5.1: forward mode through a tiny network',
    expr: 'x1 = W0 * x\nx2 = tanh(x1)\nx3 = W1 * x2\nx4 = x3 - y\nx5 = x4^2\nx5',
    at: { x: 1, W0: 2, W1: 1.2, y: 2 },
  },
  {
    name: 'Lecture 5.3: f(x) = √(x² + exp(x²)) + cos(x² + exp(x²))',
    expr: 'x1 = x^2\nx2 = exp(x1)\nx3 = x1 + x2\nx4 = sqrt(x3)\nx5 = cos(x3)\nx6 = x4 + x5\nx6',
    at: { x: 0.7 },
  },
  {
    name: 'Question 2: y·(K1 + K2)⁻¹·y with squared-exponential kernels',
    expr:
      'D1 = (X[:, None, 0] - X[None, :, 0])^2\nD2 = (X[:, None, 1] - X[None, :, 1])^2\n' +
      'K1 = exp(-D1 / (2 * l[0]^2))\nK2 = exp(-D2 / (2 * l[1]^2))\nf = y.T @ inv(K1 + K2) @ y\nf',
    at: { X: [[0, 1], [1, 0.5], [2, 2], [3, 1.5]], l: [1.5, 0.8], y: [1, -1, 0.5, 2] },
  },
  {
    name: 'Tensors: softmax of a matrix-vector product',
    expr: 'z = W @ x + b\np = softmax(z)\nsum(p * log(p))',
    at: { W: [[1, 2], [0.5, -1], [0, 1]], x: [0.3, -0.2], b: [0.1, 0, -0.1] },
  },
];

const $ = (id) => document.getElementById(id);

function post(path, body) {
  return fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(async (res) => {
    const type = res.headers.get('content-type') || '';
    const payload = type.includes('json') ? await res.json() : await res.text();
    return { ok: res.ok, status: res.status, payload };
  });
}

// --- numbers and values --------------------------------------------------------------------

function formatNumber(v, digits) {
  if (typeof v === 'string') return v; // "NaN", "Infinity", "-Infinity"
  if (digits === undefined) return String(v);
  if (v === 0 || !Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1e-4 && a < 1e7) return String(Number(v.toPrecision(digits)));
  return v.toExponential(digits - 1);
}

/** A value (number or nested array) as compact text. */
function formatValue(v, digits) {
  if (!Array.isArray(v)) return formatNumber(v, digits);
  const rank = depth(v);
  if (rank === 1) return `[${v.map((x) => formatNumber(x, digits)).join(', ')}]`;
  return `[${v.map((row) => formatValue(row, digits)).join(rank === 2 ? ',\n ' : ', ')}]`;
}

function depth(v) {
  let d = 0;
  while (Array.isArray(v)) {
    d++;
    v = v[0];
  }
  return d;
}

function shapeText(shape) {
  return shape.length === 0 ? 'scalar' : `[${shape.join(', ')}]`;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

// --- errors, at their position -----------------------------------------------------------

function clearError() {
  $('error').hidden = true;
  $('error-position').hidden = true;
  $('error-excerpt').hidden = true;
}

function showError(title, message, position) {
  $('error-title').textContent = title;
  $('error-message').textContent = message;
  const excerpt = $('error-excerpt');
  excerpt.replaceChildren();
  if (position) {
    $('error-position').textContent = `at line ${position.line}, column ${position.column}`;
    $('error-position').hidden = false;
    const lines = $('expr').value.split('\n');
    const line = lines[position.line - 1];
    if (line !== undefined) {
      const at = Math.min(position.column - 1, line.length);
      excerpt.append(
        el('span', `${String(position.line).padStart(3)} | ${line.slice(0, at)}`),
        el('mark', line.slice(at, at + 1) || ' '),
        el('span', `${line.slice(at + 1)}\n`),
        el('span', `${' '.repeat(6 + at)}^`, 'caret'),
      );
      excerpt.hidden = false;
      selectPosition(lines, position.line, at);
    }
  }
  $('error').hidden = false;
}

/** Put the cursor in the expression at the error, so it can be fixed in place. */
function selectPosition(lines, line, column) {
  let offset = 0;
  for (let i = 0; i < line - 1; i++) offset += lines[i].length + 1;
  offset += column;
  const expr = $('expr');
  expr.focus();
  expr.setSelectionRange(offset, Math.min(offset + 1, expr.value.length));
}

/** A problem+json answer: the message, and the position in the expression where there is one. */
function showProblem(problem) {
  if (typeof problem !== 'object' || problem === null) {
    showError('Error', String(problem));
    return;
  }
  const entry = (problem.errors || []).find((e) => e.position) || {};
  const position = problem.position || entry.position;
  const where = problem.node !== undefined ? ` (node ${problem.node})` : '';
  showError(problem.title || 'Error', `${problem.detail || 'The request failed'}${where}`, position);
}

// --- results -------------------------------------------------------------------------------

function showValue(answer) {
  $('value').textContent = formatValue(answer.value);
  $('value-shape').textContent = `shape ${shapeText(answer.shape)}`;
}

function showGradient(result) {
  const box = $('gradient');
  box.replaceChildren();
  if (!result.ok) {
    const p = result.payload || {};
    box.append(el('p', p.code === 'not_scalar' ? 'The output is not a scalar, so it has no gradient: the reverse table uses a cotangent of ones.' : p.detail || 'No gradient', 'hint'));
    return;
  }
  const table = el('table');
  for (const [name, g] of Object.entries(result.payload.gradient)) {
    const row = el('tr');
    row.append(el('td', `∂f/∂${name}`), el('td', Array.isArray(g) ? formatValue(g, 8) : formatValue(g)));
    table.append(row);
  }
  box.append(table);
}

function showRecommendation(result) {
  const p = $('recommendation');
  p.replaceChildren();
  if (!result.ok) {
    p.append(el('span', (result.payload && result.payload.detail) || 'No analysis', 'hint'));
    return;
  }
  const { recommendation, cost } = result.payload;
  p.append(el('strong', `${recommendation.mode === 'forward' ? 'Forward' : 'Reverse'} mode. `), document.createTextNode(recommendation.reason.replace(/^(Forward|Reverse) mode\. /, '')));
  p.append(el('br'), el('span', `One evaluation: ${cost.eval.flops} flops · one forward pass: +${cost.jvp.flops} · one reverse pass: +${cost.vjp.flops} flops.`, 'hint'));
}

function table(id, columns, rows, output) {
  const t = $(id);
  t.replaceChildren();
  const head = el('tr');
  for (const c of columns) head.append(el('th', c.title));
  const thead = el('thead');
  thead.append(head);
  const tbody = el('tbody');
  for (const step of rows) {
    const tr = el('tr', undefined, step.op === 'input' ? 'input' : step.id === output ? 'output' : '');
    for (const c of columns) {
      const text = c.cell(step);
      const td = el('td', text.length > 400 ? `${text.slice(0, 400)}…` : text, c.className);
      if (text.length > 400) td.title = text;
      tr.append(td);
    }
    tbody.append(tr);
  }
  t.append(thead, tbody);
}

function seedsText(values) {
  return Object.entries(values)
    .map(([name, v]) => `${name} = ${formatValue(v, 4)}`)
    .join(', ');
}

function showTrace(result) {
  if (!result.ok) {
    $('forward-table').replaceChildren();
    $('reverse-table').replaceChildren();
    $('forward-seeds').textContent = (result.payload && result.payload.detail) || 'No trace';
    return;
  }
  const { steps, output, seeds } = result.payload;
  const call = (s) => (s.op === 'input' ? 'input' : `${s.op}(${s.args.join(', ')})`);
  const common = [
    { title: 'step', cell: (s) => s.id, className: 'id' },
    { title: 'operation', cell: call },
    { title: 'shape', cell: (s) => shapeText(s.shape) },
    { title: 'value', cell: (s) => formatValue(s.value, 6), className: 'num' },
  ];
  table('forward-table', [...common, { title: 'tangent', cell: (s) => formatValue(s.tangent, 6), className: 'num' }], steps, output);
  table('reverse-table', [...common, { title: 'adjoint', cell: (s) => formatValue(s.adjoint, 6), className: 'num' }], [...steps].reverse(), output);
  $('forward-seeds').textContent = `Seeds: ${seedsText(seeds.tangents || {})} (the tangent of each input; the output's tangent is the directional derivative).`;
  $('reverse-seeds').textContent = `Seed: the output's adjoint = ${formatValue(seeds.cotangent, 4)}; each input's adjoint is its gradient.`;
}

function showGraph(result) {
  const box = $('graph');
  box.replaceChildren();
  if (!result.ok) {
    box.append(el('p', (result.payload && result.payload.detail) || 'No picture', 'hint'));
    return;
  }
  // Parsed as SVG (never as HTML), then adopted: the picture is data from Graphviz.
  const doc = new DOMParser().parseFromString(result.payload, 'image/svg+xml');
  const svg = doc.documentElement;
  if (svg.nodeName !== 'svg') {
    box.append(el('p', 'The picture could not be read', 'hint'));
    return;
  }
  for (const script of svg.querySelectorAll('script, foreignObject')) script.remove();
  const picture = document.importNode(svg, true);
  const tools = el('div', undefined, 'graph-tools');
  const button = (text, label, action) => {
    const b = el('button', text, 'secondary');
    b.type = 'button';
    b.setAttribute('aria-label', label);
    b.addEventListener('click', action);
    tools.append(b);
    return b;
  };
  box.append(tools, picture);
  const view = panZoom(picture);
  button('fit', 'Zoom to fit the whole graph', view.fit);
  button('+', 'Zoom in', () => view.zoom(1 / 1.25));
  button('−', 'Zoom out', () => view.zoom(1.25));
  tools.append(el('span', 'wheel to zoom, drag to pan', 'hint'));
}

/**
 * Fits a Graphviz SVG to its box and lets it be zoomed (wheel, at the pointer) and panned (drag)
 * by moving its viewBox: no library, and the picture stays sharp at any zoom.
 */
function panZoom(svg) {
  const numbers = (svg.getAttribute('viewBox') || '').trim().split(/[\s,]+/).map(Number);
  const natural = numbers.length === 4 && numbers.every(Number.isFinite) && numbers[2] > 0 && numbers[3] > 0
    ? { x: numbers[0], y: numbers[1], w: numbers[2], h: numbers[3] }
    : { x: 0, y: 0, w: parseFloat(svg.getAttribute('width')) || 300, h: parseFloat(svg.getAttribute('height')) || 150 };
  // The box decides the size: as wide as the card, no taller than the graph needs or 70% of the window.
  svg.removeAttribute('width');
  svg.removeAttribute('height');
  svg.setAttribute('preserveAspectRatio', 'xMidYMid meet');
  const box = svg.parentElement;
  let view = { ...natural };
  const show = () => svg.setAttribute('viewBox', `${view.x} ${view.y} ${view.w} ${view.h}`);
  const fit = () => {
    const width = box.clientWidth || natural.w;
    // Graphviz sizes are points (1/72 in): 4/3 CSS pixels each, never enlarged past that.
    const scale = Math.min((4 / 3), width / natural.w, (0.7 * window.innerHeight) / natural.h);
    const height = Math.max(120, Math.round(natural.h * scale));
    svg.style.width = '100%';
    svg.style.height = `${height}px`;
    // The view has the element's proportions, the graph centred in it, so a pointer maps linearly.
    const aspect = width / height;
    const w = Math.max(natural.w, natural.h * aspect);
    const h = w / aspect;
    view = { x: natural.x - (w - natural.w) / 2, y: natural.y - (h - natural.h) / 2, w, h };
    show();
  };
  /** The SVG point under a client position. */
  const at = (clientX, clientY) => {
    const matrix = svg.getScreenCTM();
    if (!matrix) return { x: view.x + view.w / 2, y: view.y + view.h / 2 };
    const point = svg.createSVGPoint();
    point.x = clientX;
    point.y = clientY;
    return point.matrixTransform(matrix.inverse());
  };
  const zoom = (factor, centre) => {
    const c = centre || { x: view.x + view.w / 2, y: view.y + view.h / 2 };
    // Between a twentieth of the graph and four times its size.
    const f = Math.min(Math.max(factor, (natural.w / 20) / view.w), (4 * Math.max(natural.w, natural.h * (view.w / view.h))) / view.w);
    view = { x: c.x - (c.x - view.x) * f, y: c.y - (c.y - view.y) * f, w: view.w * f, h: view.h * f };
    show();
  };
  svg.addEventListener('wheel', (event) => {
    event.preventDefault();
    zoom(Math.exp(Math.max(-1, Math.min(1, event.deltaY / 300))), at(event.clientX, event.clientY));
  }, { passive: false });
  let drag;
  svg.addEventListener('pointerdown', (event) => {
    if (event.button !== 0) return;
    svg.setPointerCapture(event.pointerId);
    drag = { start: at(event.clientX, event.clientY) };
    svg.classList.add('dragging');
  });
  svg.addEventListener('pointermove', (event) => {
    if (!drag) return;
    const now = at(event.clientX, event.clientY);
    view = { ...view, x: view.x - (now.x - drag.start.x), y: view.y - (now.y - drag.start.y) };
    show();
  });
  const stop = () => {
    drag = undefined;
    svg.classList.remove('dragging');
  };
  svg.addEventListener('pointerup', stop);
  svg.addEventListener('pointercancel', stop);
  svg.addEventListener('dblclick', fit);
  fit();
  return { fit, zoom };
}

// --- running -----------------------------------------------------------------------------

let runs = 0;

async function run() {
  const mine = ++runs;
  clearError();
  const expr = $('expr').value;
  let at;
  try {
    at = JSON.parse($('at').value || '{}');
    if (typeof at !== 'object' || at === null || Array.isArray(at)) throw new Error('give an object such as {"x": 0.7}');
  } catch (e) {
    showError('The point is not valid JSON', e instanceof Error ? e.message : String(e));
    return;
  }
  $('run').disabled = true;
  $('status').textContent = 'computing…';
  document.body.dataset.state = 'busy';
  try {
    const body = { expr, at };
    const [value, gradient, traced, analysis, picture] = await Promise.all([
      post('/eval', body),
      post('/grad', body),
      post('/trace', { ...body, mode: 'both' }),
      post('/analyze', body),
      post('/graph', { ...body, format: 'svg' }),
    ]);
    if (mine !== runs) return;
    if (!value.ok) {
      $('results').hidden = true;
      showProblem(value.payload);
      $('status').textContent = '';
      return;
    }
    showValue(value.payload);
    showGradient(gradient);
    showRecommendation(analysis);
    showTrace(traced);
    showGraph(picture);
    $('results').hidden = false;
    const warnings = value.payload.warnings || [];
    $('status').textContent = warnings.length > 0 ? `warning: ${warnings.map((w) => w.message).join('; ')}` : 'done';
  } catch (e) {
    showError('The service did not answer', e instanceof Error ? e.message : String(e));
    $('status').textContent = '';
  } finally {
    if (mine === runs) {
      $('run').disabled = false;
      document.body.dataset.state = 'done';
    }
  }
}

function load(example) {
  $('expr').value = example.expr;
  $('at').value = JSON.stringify(example.at);
}

/** The menu entry shown once the code is no longer one of the examples. */
const CUSTOM = 'custom';

/** The example whose code and point the fields hold (the point compared as JSON), if any. */
function matchingExample() {
  let at;
  try {
    at = JSON.stringify(JSON.parse($('at').value));
  } catch {
    return -1;
  }
  return EXAMPLES.findIndex((example) => example.expr === $('expr').value && JSON.stringify(example.at) === at);
}

/** The menu names what is in the fields: an example, or "Custom" once they were edited. */
function syncExampleMenu() {
  const i = matchingExample();
  $('example').value = i < 0 ? CUSTOM : String(i);
}

document.addEventListener('DOMContentLoaded', () => {
  const select = $('example');
  EXAMPLES.forEach((example, i) => select.append(new Option(example.name, String(i))));
  // Disabled: choosing it would load nothing; it is shown, not picked.
  const custom = new Option('Custom (your own code)', CUSTOM);
  custom.disabled = true;
  select.append(custom);
  select.addEventListener('change', () => {
    load(EXAMPLES[Number(select.value)]);
    run();
  });
  for (const id of ['expr', 'at']) $(id).addEventListener('input', syncExampleMenu);
  $('form').addEventListener('submit', (event) => {
    event.preventDefault();
    run();
  });
  for (const id of ['expr', 'at']) {
    $(id).addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        run();
      }
    });
  }
  load(EXAMPLES[0]);
  run();
});
