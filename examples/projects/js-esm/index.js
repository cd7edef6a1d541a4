// A JavaScript project written as ES modules ("type": "module" in
// package.json): its own module (./lib/words.js), an ESM-only package from
// npm (camelcase, installed at deploy), a builtin, and top-level await.
import camelCase from 'camelcase';
import count, { words } from './lib/words.js';
import { readFileSync } from 'node:fs';

const text = readFileSync(0, 'utf8').trim();
const pascal = await Promise.resolve(camelCase(text, { pascalCase: true }));
console.log(JSON.stringify({ camel: camelCase(text), pascal, words: count(text), first: words(text)[0] ?? null }));
