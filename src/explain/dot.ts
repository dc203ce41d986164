// The computational graph as Graphviz DOT: one node per step of the function as written (scalar
// constants are shown inline in their consumer's label), edges in the direction data flows.
// Inputs, intermediates and the output are drawn differently. Every piece of client text (ids,
// graph node names) goes through `dotString`, so no id can break out of its quoted string.

import type { Node } from '../engine/ir/graph.js';
import type { Prepared } from '../engine/prepare.js';
import { formatShape } from '../engine/tensor/tensor.js';
import { rowArgs, rowOp, stepArgs, traceRows } from './trace.js';

export interface DotOptions {
  /** Show each node's shape (the input shapes were given, not assumed). */
  shapes: boolean;
  /** Bound the layout's iterations (for large graphs: Graphviz's network simplex can take seconds). */
  quick?: boolean;
}

/** Longest piece of client text shown in a label before it is cut with an ellipsis. */
const MAX_TEXT = 40;

const STYLE = {
  input: 'shape=box, style="rounded,filled", fillcolor="#dbeafe", color="#2563eb"',
  constant: 'shape=box, style="dashed,filled", fillcolor="#f1f5f9", color="#94a3b8"',
  intermediate: 'shape=ellipse, style=filled, fillcolor="#f8fafc", color="#64748b"',
  output: 'shape=ellipse, style="filled,bold", peripheries=2, fillcolor="#fef3c7", color="#d97706"',
} as const;

type Kind = keyof typeof STYLE;

/** The nodes the picture draws. */
export function drawnNodes(prepared: Prepared): Node[] {
  return traceRows(prepared);
}

export function toDot(prepared: Prepared, options: DotOptions): string {
  const nodes = drawnNodes(prepared);
  const lines = [
    'digraph adjoint {',
    `  graph [rankdir=LR, bgcolor="transparent", fontname="Helvetica", nodesep=0.3, ranksep=0.45${options.quick ? ', mclimit=0.1, nslimit=1, nslimit1=1' : ''}];`,
    '  node [fontname="Helvetica", fontsize=11, penwidth=1.2];',
    '  edge [color="#475569", arrowsize=0.7];',
  ];
  for (const node of nodes) {
    const kind = kindOf(prepared, node);
    const classes = kind === 'output' && node.op === 'input' ? 'input output' : kind;
    lines.push(`  ${nodeName(node)} [label=${dotString(labelOf(prepared, node, options).join('\n'))}, class=${dotString(classes)}, ${STYLE[kind]}];`);
  }
  const drawn = new Set(nodes.map((n) => n.id));
  for (const node of nodes) {
    for (const a of rowArgs(node)) if (drawn.has(a)) lines.push(`  ${nodeName(prepared.primal.nodes[a]!)} -> ${nodeName(node)};`);
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** DOT node names are ours (`n<index>`), never client text: the client's ids go in labels only. */
function nodeName(node: Node): string {
  return `n${node.id}`;
}

function kindOf(prepared: Prepared, node: Node): Kind {
  if (node.id === prepared.output) return 'output';
  if (node.op === 'input') return 'input';
  if (node.op === 'const') return 'constant';
  return 'intermediate';
}

/** id; op(args) with its options; shape. */
function labelOf(prepared: Prepared, node: Node, options: DotOptions): string[] {
  const lines = [cut(node.label ?? `#${node.id}`)];
  if (node.op === 'input' || node.op === 'const') lines.push(node.op);
  else lines.push(`${rowOp(node)}(${stepArgs(prepared, node).map((a) => (typeof a === 'number' ? String(a) : cut(a))).join(', ')})`);
  // An index written as one step shows the window of the slice it made.
  const window = node.call?.fn === 'index' ? prepared.primal.nodes.find((n) => n.within === node.id && n.op === 'slice') : undefined;
  const attrs = attrText(window ?? node, options);
  if (attrs !== '') lines.push(attrs);
  // A scalar says so: NumPy's shape () or our [] reads as "nothing" to a student.
  if (options.shapes) lines.push(node.shape.length === 0 ? 'scalar' : formatShape(node.shape));
  return lines;
}

/** The op's options in brief: a slice's window [0:4, 1:2], a reshape's new shape, a reduction's axes. */
function attrText(node: Node, options: DotOptions): string {
  if (node.op === 'input' || node.op === 'const' || node.call) return '';
  if (node.op === 'slice') {
    const { starts, steps, counts } = (node as Node<'slice'>).attrs;
    const window = starts.map((start, i) => {
      const step = steps[i]!;
      const stop = start + step * counts[i]!;
      return step === 1 ? `${start}:${stop}` : `${start}:${stop < 0 ? '' : stop}:${step}`;
    });
    return `[${window.join(', ')}]`;
  }
  // (The new shape is on the shape line when shapes are shown.)
  if (node.op === 'reshape' || node.op === 'broadcast_to') return options.shapes ? '' : `to ${formatShape(node.shape)}`;
  const parts: string[] = [];
  for (const [key, value] of Object.entries(node.attrs as Record<string, unknown>)) {
    if (value === true) parts.push(key);
    else if (Array.isArray(value)) parts.push(`${key}=[${value.join(', ')}]`);
    else if (typeof value === 'number') parts.push(`${key}=${value}`);
  }
  return parts.join(' ');
}

function cut(text: string): string {
  const chars = [...text];
  return chars.length > MAX_TEXT ? `${chars.slice(0, MAX_TEXT - 1).join('')}…` : text;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const CONTROL = /[\u0000-\u001f\u007f]/g;

/**
 * A DOT double-quoted string showing `text` literally, lines split at '\n'. Inside quotes DOT
 * ends the string at '"' and Graphviz reads backslash escapes (\n, \N, \G, \l, ...) and HTML
 * entities (&lt;): so '\' is doubled, '"' escaped, '&' written as &amp;, and control characters
 * shown as \uXXXX text. Nothing else is special inside a quoted string.
 */
export function dotString(text: string): string {
  const escaped = text
    .split('\n')
    .map((line) =>
      line
        .replace(LONE_SURROGATE, '\uFFFD')
        .replace(/&/g, '&amp;')
        .replace(/\\/g, '\\\\')
        .replace(/"/g, '\\"')
        .replace(CONTROL, (c) => `\\\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
    )
    .join('\\n');
  return `"${escaped}"`;
}
