// A JavaScript project: a module of its own (./lib/count) and a package
// shipped in node_modules/ (titlecase), both loaded with require().
const titlecase = require('titlecase');
const { countWords } = require('./lib/count');

const text = require('fs').readFileSync(0, 'utf8');
console.log(JSON.stringify({ title: titlecase(text.trim()), words: countWords(text) }));
