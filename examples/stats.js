// stats: reads {"values":[1,2,3,4]} and prints summary statistics of the
// numbers (the median of an even count is the mean of the middle two):
//   {"count":4,"sum":10,"mean":2.5,"min":1,"max":4,"median":2.5}
// On bad input it prints {"error":"..."} on stderr and exits 1.
"use strict";
const fs = require("fs");

function fail(msg) {
  process.stderr.write(JSON.stringify({ error: msg }) + "\n");
  process.exit(1);
}

let data;
try {
  data = JSON.parse(fs.readFileSync(0, "utf8"));
} catch (e) {
  fail("payload is not valid JSON");
}
if (data === null || typeof data !== "object" || Array.isArray(data)) {
  fail("payload must be a JSON object");
}
if (!Object.prototype.hasOwnProperty.call(data, "values")) {
  fail("missing key values");
}
const values = data.values;
// JSON.parse turns a number too large for a double (1e400) into Infinity.
if (!Array.isArray(values) || values.length === 0 || !values.every(Number.isFinite)) {
  fail("values must be a non-empty array of finite numbers");
}

let sum = 0;
let min = values[0];
let max = values[0];
for (const v of values) {
  sum += v;
  if (v < min) min = v;
  if (v > max) max = v;
}
if (!Number.isFinite(sum)) {
  fail("the sum overflows");
}
const count = values.length;
const mean = sum / count;

const sorted = Float64Array.from(values).sort(); // typed arrays sort numerically
const mid = count >> 1;
let median = sorted[mid];
if (count % 2 === 0) {
  const a = sorted[mid - 1];
  const b = sorted[mid];
  median = (a + b) / 2;
  if (!Number.isFinite(median)) median = a / 2 + b / 2; // a + b overflowed
}

process.stdout.write(JSON.stringify({ count, sum, mean, min, max, median }) + "\n");
