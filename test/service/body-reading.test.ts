// Request bodies over real connections, however their bytes arrive (whole with the headers, in
// pieces, chunked, split inside a UTF-8 character, pipelined behind another request): the same
// answers as app.inject, 413 past BODY_LIMIT whether Content-Length or the chunks show it, 400 for
// an empty or malformed body.

import { once } from 'node:events';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';

const LIMIT = 400;
const LECTURE = JSON.stringify({ expr: 'sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))', at: { x: 0.7 } });

let app: App;
let port: number;
beforeAll(async () => {
  app = buildTestApp({ BODY_LIMIT: LIMIT });
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as { port: number }).port;
});
afterAll(() => app.close());

interface Answer {
  status: number;
  body: string;
}

/** The answers to the bytes sent in `pieces` (a pause of `gapMs` between pieces) on one connection. */
async function exchange(pieces: (string | Buffer)[], gapMs = 30): Promise<Answer[]> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  const ended = once(socket, 'end');
  for (const [i, piece] of pieces.entries()) {
    if (i > 0) await sleep(gapMs);
    socket.write(piece);
  }
  await ended;
  socket.destroy();
  let text = Buffer.concat(received).toString('latin1');
  const answers: Answer[] = [];
  while (text.length > 0) {
    const head = text.indexOf('\r\n\r\n');
    const lines = text.slice(0, head).split('\r\n');
    const length = Number(/^content-length: *(\d+)$/im.exec(lines.join('\n'))![1]);
    answers.push({ status: Number(lines[0]!.split(' ')[1]), body: Buffer.from(text.slice(head + 4, head + 4 + length), 'latin1').toString('utf8') });
    text = text.slice(head + 4 + length);
  }
  return answers;
}

function post(body: string, headers: Record<string, string> = {}, close = true): string {
  const all = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers };
  const lines = Object.entries(all).map(([k, v]) => `${k}: ${v}\r\n`);
  return `POST /grad HTTP/1.1\r\nhost: localhost\r\n${lines.join('')}${close ? 'connection: close\r\n' : ''}\r\n${body}`;
}

function chunked(parts: string[], close = true): string[] {
  const head = `POST /grad HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n${close ? 'connection: close\r\n' : ''}\r\n`;
  return [head, ...parts.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`), '0\r\n\r\n'];
}

const injected = async (body: string): Promise<Answer> => {
  const res = await app.inject({ method: 'POST', url: '/grad', headers: { 'content-type': 'application/json' }, payload: body });
  return { status: res.statusCode, body: res.body };
};
const code = (answer: Answer) => (JSON.parse(answer.body) as { code?: string }).code;

describe('a JSON body over a real connection', () => {
  it('that arrives whole, with its headers, gets the answer app.inject gets', async () => {
    const [answer] = await exchange([post(LECTURE)]);
    expect(answer).toEqual(await injected(LECTURE));
    expect(answer!.status).toBe(200);
  });

  it('that arrives in pieces (headers first, then the body in two parts) gets the same answer', async () => {
    const request = post(LECTURE);
    const bodyAt = request.indexOf('\r\n\r\n') + 4;
    const answers = await exchange([request.slice(0, bodyAt), request.slice(bodyAt, bodyAt + 10), request.slice(bodyAt + 10)]);
    expect(answers).toEqual([await injected(LECTURE)]);
  });

  it('sent chunked, whole or in pieces, gets the same answer', async () => {
    const expected = await injected(LECTURE);
    expect(await exchange([chunked([LECTURE.slice(0, 20), LECTURE.slice(20)]).join('')])).toEqual([expected]);
    expect(await exchange(chunked([LECTURE.slice(0, 20), LECTURE.slice(20)]))).toEqual([expected]);
  });

  it('with multi-byte characters split across reads gets the same answer', async () => {
    // The character is quoted in the answer (an error naming it): a wrong decoding would show.
    const body = JSON.stringify({ expr: 'x', at: { x: 1, é: 2 } });
    const request = Buffer.from(post(body));
    const cut = request.indexOf(Buffer.from('é')) + 1;
    expect(await exchange([request.subarray(0, cut), request.subarray(cut)])).toEqual([await injected(body)]);
    expect(await exchange([request])).toEqual([await injected(body)]);
    expect((await injected(body)).body).toContain('é');
  });

  it('larger than BODY_LIMIT is 413, whether its Content-Length says so or its chunks show it, whole or in pieces', async () => {
    const big = JSON.stringify({ expr: `x${' + x'.repeat(LIMIT)}`, at: { x: 1 } });
    const byLength = await exchange([post(big)]);
    const whole = await exchange([chunked([big.slice(0, 100), big.slice(100)]).join('')]);
    const pieces = await exchange(chunked([big.slice(0, 100), big.slice(100, 300), big.slice(300)]));
    for (const [answer] of [byLength, whole, pieces]) {
      expect(answer!.status).toBe(413);
      expect(code(answer!)).toBe('limit_exceeded');
    }
    // At the limit exactly, the body is read.
    const atLimit = JSON.stringify({ expr: 'x', at: { x: 1 } }).padEnd(LIMIT, ' ');
    expect((await exchange([post(atLimit)]))[0]!.status).toBe(200);
    expect((await exchange([chunked([atLimit]).join('')]))[0]!.status).toBe(200);
  });

  it('that is empty or malformed is 400 invalid_json, as app.inject finds', async () => {
    for (const body of ['', '{"expr": "x", "at": {', '{"expr":"x^2","at":{"x":1},"__proto__":{}}']) {
      const [answer] = await exchange([post(body)]);
      const expected = await injected(body);
      expect(answer!.status, body).toBe(expected.status);
      expect(code(answer!), body).toBe(code(expected));
      expect(answer!.status).toBe(400);
    }
  });

  it('pipelined behind another request on the same connection, each whole or in pieces, gets its own answer', async () => {
    const second = JSON.stringify({ expr: 'x^3', at: { x: 2 } });
    const expected = [await injected(LECTURE), await injected(second)];
    expect(await exchange([post(LECTURE, {}, false) + post(second)])).toEqual(expected);
    const both = post(LECTURE, {}, false) + post(second);
    expect(await exchange([both.slice(0, 150), both.slice(150, 260), both.slice(260)])).toEqual(expected);
  });
});
