// Runs madge's command line (`node test/madge.cjs --circular --extensions ts src routes`).
// madge reads TypeScript through @typescript-eslint/typescript-estree, which needs TypeScript's
// JavaScript API (5.x); the project compiles with TypeScript 7, which has none. So madge and its
// parsers get TypeScript 5 (the `typescript-5` alias in devDependencies) wherever they require
// 'typescript'; nothing else in this process does.
'use strict';
const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return resolve.call(this, request === 'typescript' ? 'typescript-5' : request, ...rest);
};
require('madge/bin/cli.js');
