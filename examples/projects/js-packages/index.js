// Milliseconds in words with the `ms` package from npm, installed at
// deploy from package.json (no install script runs).
const ms = require('ms');

const input = require('fs').readFileSync(0, 'utf8').trim();
process.stdout.write(ms(Number(input), { long: true }) + '\n');
