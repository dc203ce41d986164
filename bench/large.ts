// `npm run bench:large`: only the large-tensor table of `npm run bench` (bench/large-http.ts), for
// issue 12's figures without the other tables' minutes. The client process loads nothing of the
// server (see bench/run.ts).

import { measureLargeHttp, printLargeHttp } from './large-http.js';
import { startServer } from './server-process.js';

const server = await startServer();
try {
  printLargeHttp(await measureLargeHttp(server.base));
} finally {
  await server.stop();
}
