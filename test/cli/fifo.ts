// A named pipe for the tests that check it is refused. Node has no mkfifo(3), so mkfifo(1) makes it,
// called through a shell: POSIX has both, and the tests that need a FIFO run only there.

import { execFileSync } from 'node:child_process';

export function makeFifo(path: string): void {
  execFileSync('/bin/sh', ['-c', 'mkfifo "$1"', 'sh', path]);
}
