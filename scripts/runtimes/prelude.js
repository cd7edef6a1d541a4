// Node-compat prelude for QuickJS-ng (qjs 0.10.1) on WASI preview1.
// It is evaluated once, at build time, inside the snapshot that build-qjs.sh makes with
// `wasmtime wizer` (see qjs_snapshot.c): everything below runs then, except the function this
// script evaluates to, start(args), which every call runs on its own fresh copy of that state.
// Run:    qjs.wasm [args...]   -> start(args): runs /faas/code.js, CommonJS or an ES module (stdin = payload)
// Check:  qjs.wasm --check     -> parse only; exit 0, or SyntaxError on stderr + exit 1
// Env FAAS_CODE overrides the code path (default /faas/code.js).
// Nothing that differs between calls (environment, arguments, clocks) may be read at top level.
(function (g) {
'use strict';
const std = g.std, os = g.os, bjson = g.bjson;
const compileModule = g.__faas_compile_module;   // qjs_snapshot.c: parse an ES module, imports unresolved
delete g.__faas_compile_module;
let ARGS = [];
const PRELUDE = '/faas/prelude.js';
let CODE = '/faas/code.js';
for (const k of ['std', 'os', 'bjson', 'scriptArgs', 'print']) delete g[k];
g.global = g;
// performance.timeOrigin: QuickJS fixes it when the context is made (at build time, in the
// snapshot) and on its monotonic clock; here it is the call's start in epoch milliseconds,
// as in Node, set by start().
const perfNow = g.performance.now.bind(g.performance);
let timeOrigin = 0;
g.performance = Object.defineProperties({}, {
  now: { value: function now() { return perfNow(); }, writable: true, enumerable: true, configurable: true },
  timeOrigin: { get: () => timeOrigin, enumerable: true, configurable: true },
});

// ---------------------------------------------------------------- helpers
const defineHidden = (o, k, v) => Object.defineProperty(o, k, { value: v, writable: true, configurable: true });
function makeErr(Ctor, code, msg) { const e = new Ctor(msg); e.code = code; return e; }
// wasi-libc's errno numbers (WASI preview1's, not Linux's), as qjs' os functions return them.
const WASI_ERRNO = { 1: 'E2BIG', 2: 'EACCES', 6: 'EAGAIN', 8: 'EBADF', 10: 'EBUSY', 20: 'EEXIST', 22: 'EFBIG', 27: 'EINTR',
  28: 'EINVAL', 29: 'EIO', 31: 'EISDIR', 32: 'ELOOP', 33: 'EMFILE', 37: 'ENAMETOOLONG', 44: 'ENOENT', 48: 'ENOMEM',
  51: 'ENOSPC', 52: 'ENOSYS', 54: 'ENOTDIR', 55: 'ENOTEMPTY', 58: 'ENOTSUP', 63: 'EPERM', 64: 'EPIPE', 69: 'EROFS',
  70: 'ESPIPE', 75: 'EXDEV', 76: 'ENOTCAPABLE' };
function errnoErr(errno, syscall, path) {
  const name = WASI_ERRNO[errno] || 'E' + errno;
  const e = new Error(`${name}: ${std.strerror(errno).toLowerCase()}, ${syscall}${path !== undefined ? ` '${path}'` : ''}`);
  e.errno = -errno; e.code = name; e.syscall = syscall; if (path !== undefined) e.path = path;
  return e;
}

// ---------------------------------------------------------------- UTF-8 / encodings
// Per-byte loops run at ~100-200 ns/byte in the wasm-hosted interpreter, so bulk conversions go
// through native code: bjson (de)serialises an 8-bit "latin1" string as a small header + raw bytes.
const BJ_HDR = (() => {
  try {
    const p = new Uint8Array(bjson.write('ab'));
    if (p.length > 3 && p[p.length - 1] === 98 && p[p.length - 2] === 97 && p[p.length - 3] === 4) return Array.from(p.subarray(0, p.length - 3));
  } catch { /* fall through */ }
  return null;
})();
function latin1FromBytes(b) {              // Uint8Array -> string with one char (0-255) per byte
  const n = b.length;
  if (!BJ_HDR || n < 64) return unitsToString(b, n);
  const hdr = BJ_HDR.slice(); let v = n * 2;
  do { const x = v % 128; v = Math.floor(v / 128); hdr.push(v ? x | 128 : x); } while (v);
  const buf = new Uint8Array(hdr.length + n); buf.set(hdr); buf.set(b, hdr.length);
  return bjson.read(buf.buffer, 0, buf.length, 0);
}
function bytesFromLatin1(s) {              // string of chars 0-255 -> Uint8Array
  if (BJ_HDR && s.length >= 64) {
    const w = new Uint8Array(bjson.write(s)); let p = BJ_HDR.length, v = 0, sh = 1, c;
    do { c = w[p++]; v += (c & 127) * sh; sh *= 128; } while (c & 128);
    if (v === s.length * 2 && w.length - p === s.length) return w.subarray(p);   // 8-bit string: raw bytes follow
  }
  const o = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) o[i] = s.charCodeAt(i); return o;
}
const NON_ASCII_STR = /[^\x00-\x7f]/;
function utf8Encode(s) {
  s = String(s);
  if (!NON_ASCII_STR.test(s)) return bytesFromLatin1(s);
  try { return bytesFromLatin1(unescape(encodeURIComponent(s))); } catch { return utf8EncodeSlow(s); }  // URIError: lone surrogate
}
function utf8EncodeSlow(s) {
  const out = new Uint8Array(s.length * 3); let p = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) { out[p++] = c; continue; }
    if (c < 0x800) { out[p++] = 0xc0 | (c >> 6); out[p++] = 0x80 | (c & 63); continue; }
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = s.charCodeAt(i + 1);
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++;
        out[p++] = 0xf0 | (c >> 18); out[p++] = 0x80 | ((c >> 12) & 63);
        out[p++] = 0x80 | ((c >> 6) & 63); out[p++] = 0x80 | (c & 63); continue;
      }
      c = 0xfffd;
    }
    out[p++] = 0xe0 | (c >> 12); out[p++] = 0x80 | ((c >> 6) & 63); out[p++] = 0x80 | (c & 63);
  }
  return out.subarray(0, p);
}
// Fast path is all native code: bytes -> latin1 string -> escape() -> decodeURIComponent(); invalid
// UTF-8 makes decodeURIComponent throw, then the JS decoder below does WHATWG-style U+FFFD replacement.
const NON_ASCII = /[\x80-\xff]/;
function utf8Decode(b, start = 0, end = b.length) {
  if (end <= start) return '';
  const bin = latin1FromBytes(b.subarray(start, end));
  if (!NON_ASCII.test(bin)) return bin;
  try { return decodeURIComponent(escape(bin)); } catch { return utf8DecodeSlow(b, start, end); }
}
function utf8DecodeSlow(b, start, end) {
  const u = new Uint16Array(end - start); let p = 0;   // UTF-16 units never outnumber UTF-8 bytes
  for (let i = start; i < end;) {
    const c = b[i];
    if (c < 0x80) { u[p++] = c; i++; continue; }
    let need = 0, cp = 0, lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) { need = 1; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { need = 2; cp = c & 0xf; if (c === 0xe0) lo = 0xa0; if (c === 0xed) hi = 0x9f; }
    else if (c >= 0xf0 && c <= 0xf4) { need = 3; cp = c & 7; if (c === 0xf0) lo = 0x90; if (c === 0xf4) hi = 0x8f; }
    else { u[p++] = 0xfffd; i++; continue; }
    let k = 1;
    for (; k <= need; k++) {
      const d = b[i + k];
      if (i + k >= end || d < lo || d > hi) break;
      cp = (cp << 6) | (d & 63); lo = 0x80; hi = 0xbf;
    }
    i += k;
    if (k <= need) u[p++] = 0xfffd;                      // maximal invalid subpart -> one U+FFFD (WHATWG)
    else if (cp >= 0x10000) { cp -= 0x10000; u[p++] = 0xd800 + (cp >> 10); u[p++] = 0xdc00 + (cp & 0x3ff); }
    else u[p++] = cp;
  }
  return unitsToString(u, p);
}
function unitsToString(u, n) {
  if (n <= 8192) return String.fromCharCode.apply(null, u.subarray(0, n));
  const parts = [];
  for (let i = 0; i < n; i += 8192) parts.push(String.fromCharCode.apply(null, u.subarray(i, Math.min(n, i + 8192))));
  return parts.join('');
}
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
function b64Encode(b, url) {
  const parts = [];
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i] << 16) | ((b[i + 1] || 0) << 8) | (b[i + 2] || 0);
    parts.push(B64[n >> 18] + B64[(n >> 12) & 63] + (i + 1 < b.length ? B64[(n >> 6) & 63] : '=') + (i + 2 < b.length ? B64[n & 63] : '='));
  }
  const s = parts.join('');
  return url ? s.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '') : s;
}
function b64Decode(s) {
  s = String(s).replace(/[^A-Za-z0-9+/\-_]/g, '');
  const out = new Uint8Array((s.length * 3) >> 2); let p = 0, acc = 0, bits = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s[i]; if (c === '-') c = '+'; else if (c === '_') c = '/';
    acc = (acc << 6) | B64.indexOf(c); bits += 6;
    if (bits >= 8) { bits -= 8; out[p++] = (acc >> bits) & 255; }
  }
  return out.subarray(0, p);
}
function normEnc(enc) {
  const e = String(enc === undefined || enc === null ? 'utf8' : enc).toLowerCase();
  switch (e) {
    case 'utf8': case 'utf-8': return 'utf8';
    case 'latin1': case 'binary': return 'latin1';
    case 'ucs2': case 'ucs-2': case 'utf16le': case 'utf-16le': return 'utf16le';
    case 'hex': case 'base64': case 'base64url': case 'ascii': return e;
  }
  throw makeErr(TypeError, 'ERR_UNKNOWN_ENCODING', `Unknown encoding: ${enc}`);
}
function encodeString(s, enc) {
  switch (normEnc(enc)) {
    case 'utf8': return utf8Encode(s);
    case 'hex': { const n = s.length >> 1, o = new Uint8Array(n); let i = 0;
      for (; i < n; i++) { const v = parseInt(s.substr(i * 2, 2), 16); if (Number.isNaN(v)) break; o[i] = v; }
      return o.subarray(0, i); }
    case 'base64': case 'base64url': return b64Decode(s);
    case 'utf16le': { const o = new Uint8Array(s.length * 2);
      for (let i = 0; i < s.length; i++) { const c = s.charCodeAt(i); o[2 * i] = c & 255; o[2 * i + 1] = c >> 8; } return o; }
    default: { if (!/[^\x00-\xff]/.test(s)) return bytesFromLatin1(s);
      const o = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) o[i] = s.charCodeAt(i) & 255; return o; }
  }
}
function decodeBytes(b, enc, start = 0, end = b.length) {
  switch (normEnc(enc)) {
    case 'utf8': return utf8Decode(b, start, end);
    case 'hex': { const parts = []; for (let i = start; i < end; i++) parts.push(HEX[b[i]]); return parts.join(''); }
    case 'base64': return b64Encode(b.subarray(start, end));
    case 'base64url': return b64Encode(b.subarray(start, end), true);
    case 'ascii': { const u = new Uint16Array(end - start); for (let i = start; i < end; i++) u[i - start] = b[i] & 127; return unitsToString(u, u.length); }
    case 'utf16le': { const n = (end - start) >> 1, u = new Uint16Array(n); for (let i = 0; i < n; i++) u[i] = b[start + 2 * i] | (b[start + 2 * i + 1] << 8); return unitsToString(u, n); }
    default: return latin1FromBytes(b.subarray(start, end));
  }
}

// ---------------------------------------------------------------- Buffer (subset)
class Buffer extends Uint8Array {
  static from(v, encOrOff, len) {
    if (typeof v === 'string') return toBuf(encodeString(v, encOrOff));
    if (v instanceof ArrayBuffer) return new Buffer(v, encOrOff || 0, len === undefined ? v.byteLength - (encOrOff || 0) : len);
    if (ArrayBuffer.isView(v)) { const b = new Buffer(v.byteLength); b.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)); return b; }
    if (v && v.type === 'Buffer' && Array.isArray(v.data)) v = v.data;
    if (v && typeof v.length === 'number') { const b = new Buffer(v.length); for (let i = 0; i < v.length; i++) b[i] = v[i]; return b; }
    throw makeErr(TypeError, 'ERR_INVALID_ARG_TYPE', 'The first argument must be of type string or an instance of Buffer, ArrayBuffer, or Array or an Array-like Object.');
  }
  static alloc(n, fill, enc) { const b = new Buffer(n); if (fill !== undefined && fill !== 0) b.fill(typeof fill === 'string' ? encodeString(fill, enc)[0] : fill); return b; }
  static allocUnsafe(n) { return new Buffer(n); }
  static isBuffer(b) { return b instanceof Buffer; }
  static isEncoding(e) { try { normEnc(e); return typeof e === 'string'; } catch { return false; } }
  static byteLength(s, enc) { return typeof s === 'string' ? encodeString(s, enc).length : s.byteLength; }
  static concat(list, total) {
    if (total === undefined) total = list.reduce((n, b) => n + b.length, 0);
    const out = new Buffer(total); let p = 0;
    for (const b of list) { if (p >= total) break; const part = b.length > total - p ? b.subarray(0, total - p) : b; out.set(part, p); p += part.length; }
    return out;
  }
  static compare(a, b) { return Buffer.prototype.compare.call(a, b); }
  toString(enc, start = 0, end = this.length) {
    start = Math.max(0, start | 0); end = Math.min(this.length, end === undefined ? this.length : end | 0);
    return end <= start ? '' : decodeBytes(this, enc, start, end);
  }
  toJSON() { return { type: 'Buffer', data: Array.from(this) }; }
  equals(o) { return this.compare(o) === 0; }
  compare(o) {
    const n = Math.min(this.length, o.length);
    for (let i = 0; i < n; i++) if (this[i] !== o[i]) return this[i] < o[i] ? -1 : 1;
    return this.length === o.length ? 0 : this.length < o.length ? -1 : 1;
  }
  slice(s, e) { return this.subarray(s, e); }
  write(str, off = 0, len, enc) {
    if (typeof off === 'string') { enc = off; off = 0; } else if (typeof len === 'string') { enc = len; len = undefined; }
    const b = encodeString(str, enc); const n = Math.min(b.length, this.length - off, len === undefined ? Infinity : len);
    this.set(b.subarray(0, n), off); return n;
  }
  copy(t, ts = 0, ss = 0, se = this.length) { const p = this.subarray(ss, Math.min(se, ss + t.length - ts)); t.set(p, ts); return p.length; }
  indexOf(v, from = 0, enc) {
    if (typeof v === 'number') return Uint8Array.prototype.indexOf.call(this, v & 255, from);
    const n = typeof v === 'string' ? encodeString(v, enc) : v;
    if (from < 0) from = Math.max(0, this.length + from);
    outer: for (let i = from; i <= this.length - n.length; i++) { for (let j = 0; j < n.length; j++) if (this[i + j] !== n[j]) continue outer; return i; }
    return -1;
  }
  includes(v, from, enc) { return this.indexOf(v, from, enc) !== -1; }
}
for (const [name, get, set, size] of [['UInt8', 'getUint8', 'setUint8', 1], ['Int8', 'getInt8', 'setInt8', 1],
  ['UInt16', 'getUint16', 'setUint16', 2], ['Int16', 'getInt16', 'setInt16', 2], ['UInt32', 'getUint32', 'setUint32', 4],
  ['Int32', 'getInt32', 'setInt32', 4], ['Float', 'getFloat32', 'setFloat32', 4], ['Double', 'getFloat64', 'setFloat64', 8],
  ['BigInt64', 'getBigInt64', 'setBigInt64', 8], ['BigUInt64', 'getBigUint64', 'setBigUint64', 8]]) {
  for (const [sfx, le] of size === 1 ? [['', false]] : [['LE', true], ['BE', false]]) {
    const dv = (b) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    const rd = function (o = 0) { return dv(this)[get](o, le); };
    const wr = function (v, o = 0) { dv(this)[set](o, v, le); return o + size; };
    for (const n of new Set([name, name.replace('UInt', 'Uint')])) {
      defineHidden(Buffer.prototype, 'read' + n + sfx, rd); defineHidden(Buffer.prototype, 'write' + n + sfx, wr);
    }
  }
}
function toBuf(u8) { return new Buffer(u8.buffer, u8.byteOffset, u8.length); }

class TextEncoder { get encoding() { return 'utf-8'; } encode(s = '') { return utf8Encode(s); }
  encodeInto(s, dst) { const b = utf8Encode(s); const n = Math.min(b.length, dst.length); dst.set(b.subarray(0, n)); return { read: s.length, written: n }; } }
class TextDecoder {
  constructor(enc = 'utf-8') { if (!/^utf-?8$/i.test(enc)) throw new RangeError(`The "${enc}" encoding is not supported`); }
  get encoding() { return 'utf-8'; }
  decode(b) {
    if (b === undefined) return '';
    const u = b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    const s = utf8Decode(u); return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
  }
}

// ---------------------------------------------------------------- util.inspect / util.format (own implementation, no colors)
// Containers are rendered on one line when that line is short and they hold at most `compact`
// levels of non-empty containers; otherwise one entry per line (short array items packed in rows).
const customInspect = Symbol.for('nodejs.util.inspect.custom');
const tagOf = (v) => Object.prototype.toString.call(v).slice(8, -1);
const getKeys = (v, all) => (all ? Object.getOwnPropertyNames(v) : Object.keys(v))
  .concat(Object.getOwnPropertySymbols(v).filter((s) => all || Object.prototype.propertyIsEnumerable.call(v, s)));
const numStr = (n) => (Object.is(n, -0) ? '-0' : String(n));
const plural = (n, what) => `... ${n} more ${what}${n > 1 ? 's' : ''}`;
const SHORT_ESC = { '\b': 'b', '\t': 't', '\n': 'n', '\f': 'f', '\r': 'r', '\\': '\\' };
function quoteStr(s) {
  const q = ["'", '"', '`'].find((c) => !s.includes(c) && (c !== '`' || !s.includes('${'))) || "'";
  return q + s.replace(/[\ud800-\udbff][\udc00-\udfff]|[\x00-\x1f\x7f-\x9f\\'"`\ud800-\udfff]/g, (c) => {
    const code = c.charCodeAt(0);
    if (c.length === 2 || (c !== q && '\'"`'.includes(c))) return c;
    if (c === q || SHORT_ESC[c]) return '\\' + (SHORT_ESC[c] || c);
    return code >= 0xd800 ? '\\u' + code.toString(16) : '\\x' + code.toString(16).toUpperCase().padStart(2, '0');
  }) + q;
}
function showString(s, o, lvl) {              // long multi-line strings become 'line\n' + 'line' chains
  const cut = s.length - o.maxStringLength, rest = cut > 0 ? plural(cut, 'character') : '';
  if (cut > 0) s = s.slice(0, o.maxStringLength);
  const long = s.length > 16 && s.length > o.breakLength - 2 * lvl - 4;
  return (long ? s.split(/(?<=\n)/) : [s]).map(quoteStr).join(' +\n' + ' '.repeat(2 * lvl + 2)) + rest;
}
function ctorName(v) {
  for (let p = v, d; p; p = Object.getPrototypeOf(p)) if ((d = Object.getOwnPropertyDescriptor(p, 'constructor')) && typeof d.value === 'function' && d.value.name) return d.value.name;
  return null;
}
function fnLabel(f) {
  const sup = Object.getPrototypeOf(f);
  if (/^class\b/.test(Function.prototype.toString.call(f))) return `[class ${f.name || '(anonymous)'}${sup && sup !== Function.prototype && sup.name ? ` extends ${sup.name}` : ''}]`;
  const kind = /^(Async)?(Generator)?Function$/.test(tagOf(f)) ? tagOf(f) : 'Function';
  return `[${kind}${f.name ? `: ${f.name}` : ' (anonymous)'}]`;
}
function showProp(v, k, st, lvl) {
  const d = Object.getOwnPropertyDescriptor(v, k) || { value: v[k], enumerable: true };
  const val = 'value' in d ? show(d.value, st, lvl + 1) : d.get ? (d.set ? '[Getter/Setter]' : '[Getter]') : d.set ? '[Setter]' : 'undefined';
  const name = typeof k === 'symbol' ? `[${k.toString()}]` : !d.enumerable ? `[${k}]` : /^[A-Za-z_]\w*$/.test(k) ? k : quoteStr(k);
  return `${name}: ${val}`;
}
function show(v, st, lvl) {
  const o = st.o, t = typeof v;
  if (t === 'string') return showString(v, o, lvl);
  if (t === 'number' || t === 'bigint') return numStr(v) + (t === 'bigint' ? 'n' : '');
  if (v === null || (t !== 'object' && t !== 'function')) return String(v);
  const custom = o.customInspect !== false && v[customInspect];
  if (typeof custom === 'function' && custom !== inspect && !(v.constructor && v.constructor.prototype === v)) {
    const r = custom.call(v, o.depth - lvl, Object.assign({}, o, { depth: o.depth - lvl, stylize: (x) => x }), inspect);
    if (r !== v) return typeof r === 'string' ? r.replace(/\n/g, '\n' + ' '.repeat(2 * lvl)) : show(r, st, lvl);
  }
  if (st.path.includes(v)) return `[Circular *${st.refs.get(v) || st.refs.set(v, st.refs.size + 1).get(v)}]`;
  // Describe the value: label (stand-alone text), prefix + brackets, positional entries, keys shown as `key: value`.
  const name = ctorName(v), tag = v[Symbol.toStringTag];
  let label = '', open = '{', close = '}', entries = null, size = -1, keys = getKeys(v, o.showHidden), extra = [];
  let prefix = name === null ? '[Object: null prototype] ' : name === 'Object' ? '' : `${name} `;
  if (typeof tag === 'string' && tag && tag !== name) prefix = `${prefix || 'Object '}[${tag}] `;
  const boxed = [Number, String, Boolean, Symbol, BigInt].find((C) => v instanceof C);
  const notIndex = (k) => typeof k === 'symbol' || String(Number(k) >>> 0) !== k;
  if (Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView))) {
    [open, close, size] = ['[', ']', v.length];
    prefix = name === 'Array' ? '' : `${name || '[Array: null prototype]'}(${size}) `;
    keys = keys.filter(notIndex);
    entries = (max, out = []) => {
      for (let i = 0, j; i < max; i = j) {
        for (j = i; j < size && !(j in v);) j++;
        out.push(j > i ? `<${j - i} empty item${j - i > 1 ? 's' : ''}>` : show(v[j++], st, lvl + 1));
      }
      return out;
    };
  } else if (v instanceof Map || v instanceof Set) {
    size = v.size; prefix = `${name || tagOf(v)}(${size}) `;
    entries = (max, out = []) => {
      for (const e of v) { if (out.length >= max) break; out.push(v instanceof Map ? `${show(e[0], st, lvl + 1)} => ${show(e[1], st, lvl + 1)}` : show(e, st, lvl + 1)); }
      return out;
    };
  } else if (typeof v === 'function') label = fnLabel(v);
  else if (v instanceof Error) {
    label = typeof v.stack === 'string' && v.stack ? v.stack : Error.prototype.toString.call(v);
    label = (label.includes('\n    at') ? label : `[${label}]`).replace(/\n/g, '\n' + ' '.repeat(2 * lvl));
    keys = keys.filter((k) => k !== 'stack' && k !== 'message');
  } else if (v instanceof Date) label = Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString();
  else if (v instanceof RegExp) label = RegExp.prototype.toString.call(v);
  else if (boxed) [label, keys] = [`[${boxed.name}: ${show(v.valueOf(), st, lvl)}]`, boxed === String ? keys.filter(notIndex) : keys];
  else if (v instanceof ArrayBuffer) extra = [`[Uint8Contents]: <${hexBytes(new Uint8Array(v), o.maxArrayLength).slice(1)}>`, `byteLength: ${v.byteLength}`]; else if (v instanceof Promise || v instanceof WeakMap || v instanceof WeakSet) extra = [v instanceof Promise ? '<pending>' : '<items unknown>'];
  if (label && prefix && !(v instanceof Error) && t !== 'function' && !boxed && name !== tagOf(v)) label = prefix + label;
  if (label) prefix = '';
  if (size <= 0 && !keys.length && !extra.length) return label || `${prefix}${open}${close}`;
  if (lvl > o.depth) return `[${name || 'Object: null prototype'}]`;
  // Render children; st.deepest tracks the deepest rendered container below us.
  const outer = st.deepest; st.deepest = lvl; st.path.push(v);
  const max = Math.min(Math.max(0, o.maxArrayLength), size);
  const cells = entries ? entries(max) : [];
  const items = cells.concat(size > max ? [plural(size - max, 'item')] : [], extra, keys.map((k) => showProp(v, k, st, lvl)));
  st.path.pop();
  const height = st.deepest - lvl; st.deepest = Math.max(outer, st.deepest);
  if (o.sorted && !entries) items.sort(typeof o.sorted === 'function' ? o.sorted : undefined);
  const head = (st.refs.has(v) ? `<ref *${st.refs.get(v)}> ` : '') + (label ? label + ' ' : '') + prefix + open;
  const limit = o.compact === false ? 0 : o.compact === true ? Infinity : o.compact;
  const line = `${head} ${items.join(', ')} ${close}`;
  if (height < limit && !line.includes('\n') && line.length + 2 * lvl <= o.breakLength - 9) return line;
  // Multi-line. Array items of at most 16 chars are packed into rows of equal-width cells (numbers right-aligned).
  const pad = '\n' + ' '.repeat(2 * lvl), width = Math.max(...cells.map((s) => s.length)) + 2;
  const cols = Math.min(16, Math.floor((o.breakLength - 2 * lvl - 2) / width));
  let rows = items;
  if (open === '[' && cells.length > 6 && cols > 1 && width <= 18 && cells.every((s) => !s.includes('\n'))) {
    const right = cells.every((s) => /^(-?[\d.e+]+n?|NaN|-?Infinity)$/.test(s)), cell = (s, last) => (last ? (right ? s.padStart(width - 2) : s) : right ? (s + ',').padStart(width - 1) + ' ' : (s + ',').padEnd(width));
    rows = [];
    for (let i = 0; i < cells.length; i += cols) rows.push(cells.slice(i, i + cols).map((s, j, r) => cell(s, j === r.length - 1)).join(''));
    rows.push(...items.slice(cells.length));
  }
  return `${head}${pad}  ${rows.join(`,${pad}  `)}${pad}${close}`;
}
function inspect(value, opts) {
  const o = Object.assign({}, inspect.defaultOptions);
  if (opts && typeof opts === 'object') for (const k of Object.keys(opts)) if (opts[k] !== undefined) o[k] = opts[k];
  if (o.depth === null) o.depth = Infinity;
  return show(value, { o, path: [], refs: new Map(), deepest: 0 }, 0);
}
inspect.custom = customInspect;
inspect.defaultOptions = { depth: 2, breakLength: 80, compact: 3, maxArrayLength: 100, maxStringLength: 10000, sorted: false, showHidden: false, customInspect: true };
const hexBytes = (b, max) => Array.from(b.subarray(0, max), (x) => ' ' + HEX[x]).join('') + (b.length > max ? ' ' + plural(b.length - max, 'byte') : '');
defineHidden(Buffer.prototype, customInspect, function () { return `<Buffer${hexBytes(this, 50)}>`; });
const BUILTIN_TOSTRING = [Object, Array, Error, Date, RegExp, Function, Number, Boolean, Symbol, BigInt].map((C) => C.prototype.toString);
function formatWithOptions(opts, ...args) {
  let i = 0, out = '';
  if (typeof args[0] === 'string') {
    i = 1; out = args.length === 1 ? args[0] : args[0].replace(/%([sdifjoOc%])/g, (m, c) => {
      if (c === '%' || i >= args.length) return c === '%' ? '%' : m;
      const x = args[i++];
      switch (c) {
        case 's': return typeof x === 'number' ? numStr(x) : typeof x === 'bigint' ? `${x}n`
          : typeof x === 'object' && x !== null && (typeof x.toString !== 'function' || BUILTIN_TOSTRING.includes(x.toString)) ? inspect(x, Object.assign({}, opts, { depth: 0 })) : String(x);
        case 'd': return typeof x === 'bigint' ? `${x}n` : typeof x === 'symbol' ? 'NaN' : numStr(Number(x));
        case 'i': return typeof x === 'bigint' ? `${x}n` : typeof x === 'symbol' ? 'NaN' : numStr(parseInt(x));
        case 'f': return typeof x === 'symbol' ? 'NaN' : numStr(parseFloat(x));
        case 'j': try { return String(JSON.stringify(x)); } catch (e) { if (/circular/i.test(e.message)) return '[Circular]'; throw e; }
        case 'o': return inspect(x, Object.assign({}, opts, { showHidden: true, depth: 4 }));
        case 'O': return inspect(x, opts);
        default: return '';                                   // %c: CSS, ignored
      }
    });
  }
  for (; i < args.length; i++) out += (i ? ' ' : '') + (typeof args[i] === 'string' ? args[i] : inspect(args[i], opts));
  return out;
}
const format = (...args) => formatWithOptions(undefined, ...args);

// ---------------------------------------------------------------- EventEmitter
class EventEmitter {
  _ev() { if (!Object.prototype.hasOwnProperty.call(this, '_events')) defineHidden(this, '_events', Object.create(null)); return this._events; }
  on(n, f) { const e = this._ev(); if (e.newListener && n !== 'newListener') this.emit('newListener', n, f); (e[n] || (e[n] = [])).push(f); return this; }
  addListener(n, f) { return this.on(n, f); }
  prependListener(n, f) { const e = this._ev(); (e[n] || (e[n] = [])).unshift(f); return this; }
  once(n, f) { const w = (...a) => { this.removeListener(n, w); return f.apply(this, a); }; w.listener = f; return this.on(n, w); }
  prependOnceListener(n, f) { const w = (...a) => { this.removeListener(n, w); return f.apply(this, a); }; w.listener = f; return this.prependListener(n, w); }
  removeListener(n, f) { const l = this._ev()[n]; if (l) { const i = l.findIndex((x) => x === f || x.listener === f); if (i !== -1) l.splice(i, 1); } return this; }
  off(n, f) { return this.removeListener(n, f); }
  removeAllListeners(n) { const e = this._ev(); if (n === undefined) for (const k in e) delete e[k]; else delete e[n]; return this; }
  emit(n, ...a) {
    const l = this._ev()[n];
    if (!l || l.length === 0) {
      if (n === 'error') { const er = a[0]; if (er instanceof Error) throw er; const e = new Error(`Unhandled error. (${inspect(er)})`); e.context = er; throw e; }
      return false;
    }
    for (const f of l.slice()) f.apply(this, a);
    return true;
  }
  listeners(n) { return (this._ev()[n] || []).map((f) => f.listener || f); }
  rawListeners(n) { return (this._ev()[n] || []).slice(); }
  listenerCount(n) { return (this._ev()[n] || []).length; }
  eventNames() { return Reflect.ownKeys(this._ev()).filter((k) => this._ev()[k].length); }
  setMaxListeners() { return this; }
  getMaxListeners() { return 10; }
}
EventEmitter.EventEmitter = EventEmitter;
EventEmitter.defaultMaxListeners = 10;
EventEmitter.once = (em, n) => new Promise((res, rej) => {
  const onErr = (e) => { em.removeListener(n, onOk); rej(e); };
  const onOk = (...a) => { if (n !== 'error') em.removeListener('error', onErr); res(a); };
  em.once(n, onOk); if (n !== 'error') em.once('error', onErr);
});

// ---------------------------------------------------------------- event loop bookkeeping, timers
let active = 0;            // ref'ed timers + pending stdin deliveries; 0 => process may exit
let sentinelArmed = false;
let exiting = false;
function flushOut() { std.out.flush(); }
function afterCallback() { flushOut(); if (active === 0 && !sentinelArmed) { sentinelArmed = true; os.setTimeout(sentinel, 0); } }
function sentinel() {       // runs after the microtask queue drained; nothing scheduled -> exit like node
  sentinelArmed = false;
  if (active !== 0 || exiting) return;
  if (process.listenerCount('beforeExit')) {
    guarded(() => process.emit('beforeExit', process.exitCode | 0));
    if (active !== 0 || sentinelArmed) return;
  }
  doExit(process.exitCode);
}
function guarded(fn, ...args) { try { fn(...args); } catch (e) { fatal(e); } }
function doExit(code) {
  if (code === undefined || code === null) code = 0;
  code = Number(code) & 0xff;
  if (!exiting) { exiting = true; process.exitCode = code; try { process.emit('exit', code); } catch (e) { fatal(e); } }
  flushOut(); std.err.flush();
  std.exit(process.exitCode & 0xff);
}
const timers = new Map();
class Timeout {
  constructor(cb, ms, args, repeat) {
    ms = Number(ms); if (!(ms >= 1 && ms <= 2147483647)) ms = this instanceof Immediate ? 0 : 1;
    this._cb = cb; this._args = args; this._ms = ms; this._repeat = repeat; this._ref = true; this._on = false; this._id = 0;
    this._start();
  }
  _start() {
    const fire = () => {
      if (!this._repeat) this._stop();
      guarded(() => this._cb.apply(this, this._args));
      afterCallback();
    };
    this._id = this._repeat ? os.setInterval(fire, this._ms) : os.setTimeout(fire, this._ms);
    this._on = true; if (this._ref) active++; timers.set(this._id, this);
  }
  _stop() { if (!this._on) return; os.clearTimeout(this._id); timers.delete(this._id); this._on = false; if (this._ref) { active--; if (active === 0) afterCallback(); } }
  ref() { if (!this._ref) { this._ref = true; if (this._on) active++; } return this; }
  unref() { if (this._ref) { this._ref = false; if (this._on) { active--; if (active === 0) afterCallback(); } } return this; }
  hasRef() { return this._ref; }
  refresh() { if (this._on) { this._stop(); this._start(); } return this; }
  close() { this._stop(); return this; }
  [Symbol.toPrimitive]() { return this._id; }
}
const validateCb = (cb) => { if (typeof cb !== 'function') throw makeErr(TypeError, 'ERR_INVALID_ARG_TYPE', `The "callback" argument must be of type function. Received ${inspect(cb)}`); };
function setTimeout(cb, ms, ...args) { validateCb(cb); return new Timeout(cb, ms, args, false); }
function setInterval(cb, ms, ...args) { validateCb(cb); return new Timeout(cb, ms, args, true); }
function clearTimeout(t) { if (t instanceof Timeout) t._stop(); else if (t !== undefined && t !== null) { const x = timers.get(+t); if (x) x._stop(); } }
class Immediate extends Timeout {}
function setImmediate(cb, ...args) { validateCb(cb); return new Immediate(cb, 0, args, false); }
const clearImmediate = clearTimeout;
const qjsQueueMicrotask = g.queueMicrotask;
function queueMicrotask(cb) { validateCb(cb); qjsQueueMicrotask(() => guarded(cb)); }
function nextTick(cb, ...args) { validateCb(cb); qjsQueueMicrotask(() => guarded(cb, ...args)); }

// ---------------------------------------------------------------- stdio
const stdinState = { consumed: false };
function readStdinChunks() {             // blocking read to EOF through stdio's FILE* (one reader only)
  const chunks = [];
  if (stdinState.consumed) return chunks;
  stdinState.consumed = true;
  for (;;) {
    const ab = new ArrayBuffer(65536);
    const n = std.in.read(ab, 0, 65536);
    if (n <= 0) break;
    chunks.push(new Buffer(ab, 0, n));
    if (n < 65536 && std.in.eof()) break;
  }
  return chunks;
}
function readStdinBuffer() { const c = readStdinChunks(); return c.length === 1 ? c[0] : Buffer.concat(c); }
function readStdinString(enc) {
  // utf8: native fgetc loop + UTF-8 decode (~4x faster than the bytes path for non-ASCII text).
  // Only differs from node for malformed UTF-8 (U+FFFD per bad byte; CESU surrogates kept).
  if (normEnc(enc) === 'utf8') { if (stdinState.consumed) return ''; stdinState.consumed = true; return std.in.readAsString(); }
  return readStdinBuffer().toString(enc);
}
function writeTo(file, chunk, enc) {
  if (typeof chunk === 'string') {
    if (enc === undefined || enc === null || normEnc(enc) === 'utf8') file.puts(chunk);
    else { const b = encodeString(chunk, enc); file.write(b.buffer, b.byteOffset, b.byteLength); }
  } else if (ArrayBuffer.isView(chunk)) file.write(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  else if (chunk instanceof ArrayBuffer) file.write(chunk, 0, chunk.byteLength);
  else throw makeErr(TypeError, 'ERR_INVALID_ARG_TYPE', `The "chunk" argument must be of type string or an instance of Buffer or Uint8Array. Received ${inspect(chunk)}`);
}
class WriteStream extends EventEmitter {
  constructor(file, fd) { super(); defineHidden(this, '_file', file); this.fd = fd; this.isTTY = false; this.writable = true; }
  write(chunk, enc, cb) {
    if (typeof enc === 'function') { cb = enc; enc = undefined; }
    writeTo(this._file, chunk, enc);
    if (typeof cb === 'function') nextTick(cb, null);
    return true;
  }
  end(chunk, enc, cb) { if (typeof chunk === 'function') { cb = chunk; chunk = undefined; } if (chunk !== undefined && chunk !== null) this.write(chunk, enc); if (typeof cb === 'function') nextTick(cb); return this; }
  cork() {} uncork() {}
  get writableLength() { return 0; }
  getColorDepth() { return 1; } hasColors() { return false; }
}
class ReadStream extends EventEmitter {
  constructor() { super(); this.fd = 0; this.isTTY = false; this.readable = true; this._enc = null; this._started = false; this._buf = null; this._ended = false; this._paused = false; }
  setEncoding(enc) { this._enc = normEnc(enc); return this; }
  on(n, f) { super.on(n, f); if (n === 'data' || n === 'readable') this._start(); return this; }
  resume() { this._paused = false; this._start(); return this; }
  pause() { this._paused = true; return this; }
  isPaused() { return this._paused; }
  unref() { return this; } ref() { return this; }
  _data() {
    if (this._buf === null) this._buf = this._enc === 'utf8' ? [readStdinString('utf8')].filter((s) => s.length)
      : readStdinChunks().map((b) => (this._enc ? b.toString(this._enc) : b));
    return this._buf;
  }
  _start() {
    if (this._started) return; this._started = true; active++;
    os.setTimeout(() => {                                   // deliver after the main script, like node
      guarded(() => {
        const chunks = this._data();
        if (this.listenerCount('readable')) { if (chunks.length) this.emit('readable'); this.emit('readable'); }
        else for (const c of chunks.splice(0)) this.emit('data', c);
        this._ended = true; this.readable = false;
        this.emit('end'); this.emit('close');
      });
      active--; afterCallback();
    }, 0);
  }
  read() {
    const chunks = this._data();
    if (!chunks.length) return null;
    const all = chunks.splice(0);
    return this._enc ? all.join('') : Buffer.concat(all);
  }
  pipe(dest) { this.on('data', (c) => dest.write(c)); if (dest !== process.stdout && dest !== process.stderr && dest.end) this.on('end', () => dest.end()); return dest; }
  [Symbol.asyncIterator]() {
    this._started = true;                                   // consume synchronously on first next()
    const chunks = this._data(); this._ended = true;
    return { next: () => Promise.resolve(chunks.length ? { value: chunks.shift(), done: false } : { value: undefined, done: true }),
      return: () => Promise.resolve({ value: undefined, done: true }), [Symbol.asyncIterator]() { return this; } };
  }
}

// ---------------------------------------------------------------- process
const process = new EventEmitter();
const env = {};                 // filled by start(): the call's environment, not the build's
Object.assign(process, {
  title: 'node', version: 'v20.0.0', versions: { node: '20.0.0', quickjs: '0.10.1' }, arch: 'wasm32', platform: 'linux',
  release: { name: 'node' }, pid: 1, ppid: 0, execPath: '/usr/local/bin/node', execArgv: [], exitCode: undefined,
  argv: [], env,             // filled by start()
  stdout: new WriteStream(std.out, 1), stderr: new WriteStream(std.err, 2), stdin: new ReadStream(),
  exit(code) { doExit(code === undefined ? process.exitCode : code); },
  abort() { std.exit(134); },
  cwd() { const [d, err] = os.getcwd(); return err ? '/' : d; },
  chdir(d) { const r = os.chdir(d); if (r) throw errnoErr(-r, 'chdir', d); },
  nextTick, umask: () => 0o22, uptime: () => performance.now() / 1000,
  hrtime: Object.assign((prev) => {
    const t = performance.now(); let s = Math.floor(t / 1000), ns = Math.round((t % 1000) * 1e6);
    if (prev) { s -= prev[0]; ns -= prev[1]; if (ns < 0) { s--; ns += 1e9; } }
    return [s, ns];
  }, { bigint: () => BigInt(Math.round(performance.now() * 1e6)) }),
  memoryUsage: Object.assign(() => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }), { rss: () => 0 }),
  cpuUsage: () => { const us = Math.round(performance.now() * 1000); return { user: us, system: 0 }; },
  emitWarning(w) { std.err.puts(`(node:1) ${w instanceof Error ? w.name + ': ' + w.message : 'Warning: ' + w}\n`); },
  binding() { throw new Error('No such module'); },
  features: {}, config: { variables: {} },
});

// ---------------------------------------------------------------- console
const counts = new Map(), timersLabel = new Map();
let groupIndent = '';
function logTo(file, args) {
  let s = formatWithOptions(undefined, ...args);
  if (groupIndent) s = groupIndent + s.replace(/\n/g, `\n${groupIndent}`);
  file.puts(s + '\n');
}
const console = {
  log: (...a) => logTo(std.out, a), info: (...a) => logTo(std.out, a), debug: (...a) => logTo(std.out, a),
  error: (...a) => logTo(std.err, a), warn: (...a) => logTo(std.err, a),
  dir: (o, opts) => std.out.puts(inspect(o, Object.assign({ customInspect: false }, opts)) + '\n'),
  trace: (...a) => { const e = new Error(formatWithOptions(undefined, ...a)); e.name = 'Trace'; logTo(std.err, [e.stack]); },
  assert: (ok, ...a) => { if (!ok) { a[0] = `Assertion failed${a.length === 0 ? '' : `: ${a[0]}`}`; logTo(std.err, a); } },
  count: (l = 'default') => { const n = (counts.get(l) || 0) + 1; counts.set(l, n); logTo(std.out, [`${l}: ${n}`]); },
  countReset: (l = 'default') => counts.delete(l),
  time: (l = 'default') => { timersLabel.set(l, performance.now()); },
  timeEnd: (l = 'default') => { console.timeLog(l); timersLabel.delete(l); },
  timeLog: (l = 'default', ...a) => { const t = timersLabel.get(l); if (t !== undefined) logTo(std.out, [`${l}: ${fmtMs(performance.now() - t)}`, ...a]); },
  group: (...a) => { if (a.length) logTo(std.out, a); groupIndent += '  '; },
  groupEnd: () => { groupIndent = groupIndent.slice(2); },
  table: (d) => logTo(std.out, [d]),
};
console.groupCollapsed = console.group;
function fmtMs(ms) { return ms >= 1000 ? `${(ms / 1000).toFixed(3)}s` : `${ms.toFixed(3)}ms`; }

// ---------------------------------------------------------------- modules: fs, path, util, ...
const isStdin = (p) => p === 0 || p === '/dev/stdin';
const encOf = (o) => (typeof o === 'string' ? o : o && o.encoding) || null;
function readFd(fd) {
  const chunks = [];
  for (;;) { const ab = new ArrayBuffer(65536); const n = os.read(fd, ab, 0, 65536); if (n < 0) throw errnoErr(-n, 'read'); if (n === 0) break; chunks.push(new Buffer(ab, 0, n)); }
  return Buffer.concat(chunks);
}
function openOrThrow(p, flags, syscall = 'open') { const fd = os.open(String(p), flags, 0o666); if (fd < 0) throw errnoErr(-fd, syscall, String(p)); return fd; }
function toBytes(data, enc) { return typeof data === 'string' ? encodeString(data, enc) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : encodeString(String(data)); }
function writeAll(fd, b) { let off = 0; while (off < b.length) { const n = os.write(fd, b.buffer, b.byteOffset + off, b.length - off); if (n < 0) throw errnoErr(-n, 'write'); off += n; } }
function statOf(p, syscall = 'stat') {
  const [st, err] = os.stat(String(p));
  if (err) throw errnoErr(err, syscall, String(p));
  const type = st.mode & os.S_IFMT;
  return Object.assign(Object.create({ isFile: () => type === os.S_IFREG, isDirectory: () => type === os.S_IFDIR, isSymbolicLink: () => type === os.S_IFLNK,
    isFIFO: () => type === os.S_IFIFO, isSocket: () => type === os.S_IFSOCK, isCharacterDevice: () => type === os.S_IFCHR, isBlockDevice: () => type === os.S_IFBLK }),
  { dev: st.dev, ino: st.ino, mode: st.mode, nlink: st.nlink, uid: st.uid, gid: st.gid, rdev: st.rdev, size: st.size, blocks: st.blocks,
    atimeMs: st.atime, mtimeMs: st.mtime, ctimeMs: st.ctime, atime: new Date(st.atime), mtime: new Date(st.mtime), ctime: new Date(st.ctime), birthtime: new Date(st.ctime) });
}
const fs = {
  readFileSync(p, opts) {
    const enc = encOf(opts);
    if (isStdin(p)) return enc ? readStdinString(enc) : readStdinBuffer();
    if (typeof p === 'string' && enc && normEnc(enc) === 'utf8') { const t = std.loadFile(p); if (t !== null) return t; }  // native decode
    let buf;
    if (typeof p === 'number') buf = readFd(p);
    else { const fd = openOrThrow(p, os.O_RDONLY); try { buf = readFd(fd); } finally { os.close(fd); } }
    return enc ? buf.toString(enc) : buf;
  },
  writeFileSync(p, data, opts) {
    const b = toBytes(data, encOf(opts));
    if (p === 1 || p === '/dev/stdout') return writeTo(std.out, b);
    if (p === 2 || p === '/dev/stderr') return writeTo(std.err, b);
    if (typeof p === 'number') return writeAll(p, b);
    const flag = (opts && opts.flag) === 'a' ? os.O_APPEND : os.O_TRUNC;
    const fd = openOrThrow(p, os.O_WRONLY | os.O_CREAT | flag); try { writeAll(fd, b); } finally { os.close(fd); }
  },
  appendFileSync(p, data, opts) { return fs.writeFileSync(p, data, Object.assign({}, typeof opts === 'string' ? { encoding: opts } : opts, { flag: 'a' })); },
  writeSync(fd, data, a, b) {
    const bytes = typeof data === 'string' ? encodeString(data, typeof b === 'string' ? b : 'utf8') : new Uint8Array(data.buffer, data.byteOffset + (a || 0), b === undefined ? data.byteLength - (a || 0) : b);
    if (fd === 1) writeTo(std.out, bytes); else if (fd === 2) writeTo(std.err, bytes); else writeAll(fd, bytes);
    return bytes.length;
  },
  readSync(fd, buf, off = 0, len = buf.byteLength - off) {
    if (typeof off === 'object' && off !== null) ({ offset: off = 0, length: len = buf.byteLength - off } = off);
    if (fd === 0) { if (stdinState.consumed && std.in.eof()) return 0; stdinState.consumed = true; return std.in.read(buf.buffer, buf.byteOffset + off, len); }
    const n = os.read(fd, buf.buffer, buf.byteOffset + off, len); if (n < 0) throw errnoErr(-n, 'read'); return n;
  },
  openSync(p, flags = 'r') {
    const f = { r: os.O_RDONLY, 'r+': os.O_RDWR, w: os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 'w+': os.O_RDWR | os.O_CREAT | os.O_TRUNC, a: os.O_WRONLY | os.O_CREAT | os.O_APPEND, 'a+': os.O_RDWR | os.O_CREAT | os.O_APPEND }[flags];
    return openOrThrow(p, f === undefined ? flags : f);
  },
  closeSync(fd) { os.close(fd); },
  existsSync(p) { return os.stat(String(p))[1] === 0; },
  statSync(p, o) { try { return statOf(p); } catch (e) { if (o && o.throwIfNoEntry === false && e.code === 'ENOENT') return undefined; throw e; } },
  lstatSync(p) { return statOf(p, 'lstat'); },
  readdirSync(p) { const [names, err] = os.readdir(String(p)); if (err) throw errnoErr(err, 'scandir', String(p)); return names.filter((n) => n !== '.' && n !== '..').sort(); },
  mkdirSync(p, o) {
    const rec = o && o.recursive;
    if (rec) { let cur = ''; for (const part of String(p).split('/')) { cur += (cur === '' && String(p).startsWith('/') ? '/' : (cur && !cur.endsWith('/') ? '/' : '')) + part; if (part && !fs.existsSync(cur)) fs.mkdirSync(cur); } return; }
    const r = os.mkdir(String(p), 0o777); if (r < 0) throw errnoErr(-r, 'mkdir', String(p));
  },
  unlinkSync(p) { const r = os.remove(String(p)); if (r < 0) throw errnoErr(-r, 'unlink', String(p)); },
  rmSync(p, o) { if (o && o.force && !fs.existsSync(p)) return; fs.unlinkSync(p); },
  renameSync(a, b) { const r = os.rename(String(a), String(b)); if (r < 0) throw errnoErr(-r, 'rename', String(a)); },
  createWriteStream(p) { if (p === '/dev/stdout') return process.stdout; if (p === '/dev/stderr') return process.stderr; const ws = new WriteStream(null, -1); ws.write = (c, e, cb) => { fs.appendFileSync(p, c, typeof e === 'string' ? e : undefined); if (typeof (cb || e) === 'function') nextTick(cb || e); return true; }; fs.writeFileSync(p, ''); return ws; },
  createReadStream(p) { if (isStdin(p)) return process.stdin; throw makeErr(Error, 'ERR_NOT_SUPPORTED', 'fs.createReadStream is only supported for stdin'); },
  constants: { F_OK: 0, R_OK: 4, W_OK: 2, X_OK: 1 },
};
const promisifyFs = (name) => (...a) => new Promise((res, rej) => { try { res(fs[name + 'Sync'](...a)); } catch (e) { rej(e); } });
const callbackFs = (name) => (...a) => { const cb = a.pop(); let r, err = null; try { r = fs[name + 'Sync'](...a); } catch (e) { err = e; } setImmediate(() => cb(err, r)); };
fs.promises = {};
for (const n of ['readFile', 'writeFile', 'appendFile', 'readdir', 'stat', 'lstat', 'mkdir', 'unlink', 'rename', 'rm']) { fs.promises[n] = promisifyFs(n); fs[n] = callbackFs(n); }
fs.accessSync = (p) => { if (!fs.existsSync(p)) throw errnoErr(2, 'access', String(p)); };
fs.promises.access = (p) => new Promise((res, rej) => { try { fs.accessSync(p); res(); } catch (e) { rej(e); } });
fs.access = (p, m, cb) => { if (typeof m === 'function') cb = m; let err = null; try { fs.accessSync(p); } catch (e) { err = e; } setImmediate(() => cb(err)); };

const path = (() => {
  function normalizeArr(parts, abs) {
    const out = [];
    for (const p of parts) { if (!p || p === '.') continue; if (p === '..') { if (out.length && out[out.length - 1] !== '..') out.pop(); else if (!abs) out.push('..'); } else out.push(p); }
    return out;
  }
  const P = {
    sep: '/', delimiter: ':',
    normalize(p) { if (p === '') return '.'; const abs = p.startsWith('/'), trail = p.endsWith('/'); let r = normalizeArr(p.split('/'), abs).join('/'); if (!r && !abs) r = '.'; if (r && trail) r += '/'; return (abs ? '/' : '') + r; },
    join(...a) { const j = a.filter((x) => x !== '').join('/'); return j ? P.normalize(j) : '.'; },
    resolve(...a) { let r = ''; for (let i = a.length - 1; i >= 0 && !r.startsWith('/'); i--) if (a[i]) r = a[i] + (r ? '/' + r : ''); if (!r.startsWith('/')) r = process.cwd() + '/' + r; const n = P.normalize(r); return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n; },
    isAbsolute: (p) => p.startsWith('/'),
    dirname(p) { if (!p) return '.'; const s = p.replace(/\/+$/, ''); const i = s.lastIndexOf('/'); return i === -1 ? '.' : i === 0 ? '/' : s.slice(0, i); },
    basename(p, ext) { let b = p.replace(/\/+$/, ''); b = b.slice(b.lastIndexOf('/') + 1); if (ext && b.endsWith(ext) && b !== ext) b = b.slice(0, -ext.length); return b; },
    extname(p) { const b = P.basename(p); const i = b.lastIndexOf('.'); return i <= 0 ? '' : b.slice(i); },
    relative(from, to) { const f = P.resolve(from).split('/').filter(Boolean), t = P.resolve(to).split('/').filter(Boolean); let i = 0; while (i < f.length && i < t.length && f[i] === t[i]) i++; return [...Array(f.length - i).fill('..'), ...t.slice(i)].join('/'); },
    parse(p) { const root = p.startsWith('/') ? '/' : '', base = P.basename(p), ext = P.extname(p); return { root, dir: P.dirname(p), base, ext, name: ext ? base.slice(0, -ext.length) : base }; },
    format(o) { const dir = o.dir || o.root || ''; const base = o.base || (o.name || '') + (o.ext || ''); return dir ? (dir.endsWith('/') ? dir + base : dir + '/' + base) : base; },
  };
  P.posix = P;
  return P;
})();

function isDeepStrictEqual(a, b, seen = new Map()) {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (seen.get(a) === b) return true; seen.set(a, b);
  if (a instanceof Date) return a.getTime() === b.getTime();
  if (a instanceof RegExp) return String(a) === String(b);
  if (a instanceof Map) { if (a.size !== b.size) return false; for (const [k, v] of a) if (!b.has(k) || !isDeepStrictEqual(v, b.get(k), seen)) return false; return true; }
  if (a instanceof Set) { if (a.size !== b.size) return false; for (const v of a) if (!b.has(v)) return false; return true; }
  const ka = getKeys(a), kb = getKeys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (!Object.prototype.hasOwnProperty.call(b, k) || !isDeepStrictEqual(a[k], b[k], seen)) return false;
  return true;
}
const util = {
  inspect, format, formatWithOptions, isDeepStrictEqual, TextEncoder, TextDecoder,
  promisify(fn) { if (fn && typeof fn[util.promisify.custom] === 'function') return fn[util.promisify.custom]; return (...a) => new Promise((res, rej) => fn(...a, (e, v) => (e ? rej(e) : res(v)))); },
  callbackify: (fn) => (...a) => { const cb = a.pop(); fn(...a).then((v) => nextTick(cb, null, v), (e) => nextTick(cb, e)); },
  inherits(c, s) { Object.setPrototypeOf(c.prototype, s.prototype); Object.setPrototypeOf(c, s); c.super_ = s; },
  deprecate: (fn) => fn, debuglog: () => Object.assign(() => {}, { enabled: false }),
  isArray: Array.isArray, stripVTControlCharacters: (s) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, ''),
  types: {
    isPromise: (v) => v instanceof Promise, isDate: (v) => v instanceof Date, isRegExp: (v) => v instanceof RegExp,
    isMap: (v) => v instanceof Map, isSet: (v) => v instanceof Set, isNativeError: (v) => v instanceof Error,
    isTypedArray: (v) => ArrayBuffer.isView(v) && !(v instanceof DataView), isUint8Array: (v) => v instanceof Uint8Array,
    isArrayBuffer: (v) => v instanceof ArrayBuffer, isAsyncFunction: (v) => tagOf(v) === 'AsyncFunction',
    isGeneratorFunction: (v) => /GeneratorFunction$/.test(tagOf(v)),
  },
};
util.promisify.custom = Symbol.for('nodejs.util.promisify.custom');
setTimeout[util.promisify.custom] = (ms, v) => new Promise((res) => setTimeout(res, ms, v));
setImmediate[util.promisify.custom] = (v) => new Promise((res) => setImmediate(res, v));

class AssertionError extends Error {
  constructor(o) { super(o.message); this.name = 'AssertionError'; this.code = 'ERR_ASSERTION'; this.actual = o.actual; this.expected = o.expected; this.operator = o.operator; this.generatedMessage = !o.userMessage; }
}
function assertFail(actual, expected, message, operator, dflt) {
  if (message instanceof Error) throw message;
  throw new AssertionError({ message: message || dflt, actual, expected, operator, userMessage: !!message });
}
const assert = (v, m) => { if (!v) assertFail(v, true, m, '==', 'The expression evaluated to a falsy value:\n\n  assert(' + inspect(v) + ')\n'); };
Object.assign(assert, {
  AssertionError, ok: assert,
  equal: (a, b, m) => { if (!(a == b)) assertFail(a, b, m, '==', `${inspect(a)} == ${inspect(b)}`); },
  notEqual: (a, b, m) => { if (a == b) assertFail(a, b, m, '!=', `${inspect(a)} != ${inspect(b)}`); },
  strictEqual: (a, b, m) => { if (!Object.is(a, b)) assertFail(a, b, m, 'strictEqual', `Expected values to be strictly equal:\n\n${inspect(a)} !== ${inspect(b)}\n`); },
  notStrictEqual: (a, b, m) => { if (Object.is(a, b)) assertFail(a, b, m, 'notStrictEqual', `Expected "actual" to be strictly unequal to: ${inspect(b)}`); },
  deepStrictEqual: (a, b, m) => { if (!isDeepStrictEqual(a, b)) assertFail(a, b, m, 'deepStrictEqual', `Expected values to be strictly deep-equal:\n${inspect(a)}\n\nshould equal\n\n${inspect(b)}`); },
  notDeepStrictEqual: (a, b, m) => { if (isDeepStrictEqual(a, b)) assertFail(a, b, m, 'notDeepStrictEqual', 'Expected "actual" not to be strictly deep-equal to: ' + inspect(b)); },
  fail: (m = 'Failed') => assertFail(undefined, undefined, m, 'fail', m),
  throws: (fn, exp, m) => { try { fn(); } catch (e) { if (typeof exp === 'function' && exp.prototype !== undefined && !(e instanceof exp)) throw e; if (exp instanceof RegExp && !exp.test(String(e))) throw e; return; } assertFail(undefined, exp, typeof exp === 'string' ? exp : m, 'throws', 'Missing expected exception.'); },
});
assert.deepEqual = assert.deepStrictEqual; assert.notDeepEqual = assert.notDeepStrictEqual;
assert.strict = assert;

class StringDecoder {
  constructor(enc) { this.encoding = normEnc(enc); this._pending = new Uint8Array(0); }
  write(b) {
    if (typeof b === 'string') return b;
    let bytes = b;
    if (this._pending.length) { bytes = new Uint8Array(this._pending.length + b.length); bytes.set(this._pending); bytes.set(b, this._pending.length); }
    let end = bytes.length;
    if (this.encoding === 'utf8') {   // hold back an incomplete trailing sequence
      for (let i = Math.max(0, end - 3); i < end; i++) {
        const c = bytes[i], need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
        if (need && i + need > end) { end = i; break; }
      }
    }
    this._pending = bytes.slice(end);
    return decodeBytes(bytes, this.encoding, 0, end);
  }
  end(b) { let s = b ? this.write(b) : ''; if (this._pending.length) s += decodeBytes(this._pending, this.encoding); this._pending = new Uint8Array(0); return s; }
}

function createInterface(input, output) {
  if (input && !(input instanceof EventEmitter) && typeof input === 'object') ({ input, output } = input);
  const rl = new EventEmitter();
  let lines = null, closed = false, pos = 0;
  const getLines = () => {
    if (lines === null) {
      const text = input === process.stdin ? (process.stdin._enc && process.stdin._enc !== 'utf8' ? readStdinBuffer().toString(process.stdin._enc) : readStdinString('utf8')) : '';
      lines = text.split(/\r?\n/); if (lines[lines.length - 1] === '') lines.pop();
    }
    return lines;
  };
  rl.close = () => { if (!closed) { closed = true; rl.emit('close'); } };
  rl.pause = () => rl; rl.resume = () => rl; rl.setPrompt = () => {}; rl.prompt = () => {};
  rl.write = (d) => { if (output) output.write(d); };
  rl.question = (q, opts, cb) => { if (typeof opts === 'function') cb = opts; if (output) output.write(q); const l = getLines(); const ans = pos < l.length ? l[pos++] : ''; setImmediate(() => cb(ans)); };
  rl[Symbol.asyncIterator] = () => {
    const l = getLines(); started = true;
    return { next: () => Promise.resolve(!closed && pos < l.length ? { value: l[pos++], done: false } : (rl.close(), { value: undefined, done: true })),
      return: () => { rl.close(); return Promise.resolve({ value: undefined, done: true }); }, [Symbol.asyncIterator]() { return this; } };
  };
  let started = false;
  const origOn = rl.on.bind(rl);
  rl.on = rl.addListener = (n, f) => {
    origOn(n, f);
    if (n === 'line' && !started) {
      started = true; active++;
      os.setTimeout(() => {
        guarded(() => { const l = getLines(); while (!closed && pos < l.length) rl.emit('line', l[pos++]); rl.close(); });
        active--; afterCallback();
      }, 0);
    }
    return rl;
  };
  return rl;
}
const readline = { createInterface, Interface: EventEmitter, promises: { createInterface(o) {
  const rl = createInterface(o); const q = rl.question; rl.question = (text) => new Promise((res) => q(text, res)); return rl; } } };

const osMod = { EOL: '\n', platform: () => 'linux', type: () => 'Linux', arch: () => 'wasm32', release: () => '0.0.0', hostname: () => 'faas',
  homedir: () => '/', tmpdir: () => '/tmp', cpus: () => [], totalmem: () => 0, freemem: () => 0, uptime: () => 0, loadavg: () => [0, 0, 0],
  endianness: () => 'LE', userInfo: () => ({ username: 'faas', uid: 0, gid: 0, shell: null, homedir: '/' }), availableParallelism: () => 1, networkInterfaces: () => ({}) };

const timersMod = { setTimeout, clearTimeout, setInterval, clearInterval: clearTimeout, setImmediate, clearImmediate,
  promises: { setTimeout: setTimeout[util.promisify.custom], setImmediate: setImmediate[util.promisify.custom] } };

// Function code gets its own path object: replacing its functions must not change how the
// prelude resolves require() and import.
const userPath = Object.assign({}, path);
userPath.posix = userPath;
const builtins = {
  fs, path: userPath, util, events: EventEmitter, process, buffer: { Buffer, constants: { MAX_LENGTH: 2 ** 31 - 1 } }, os: osMod, assert,
  'assert/strict': assert, readline, string_decoder: { StringDecoder }, timers: timersMod, 'timers/promises': timersMod.promises,
  'fs/promises': fs.promises, 'path/posix': userPath, 'readline/promises': readline.promises,
};

// ---------------------------------------------------------------- fetch: outbound HTTP through the platform's client
// fetch(url, {method, headers, body}) -> Promise<Response> (status, ok, statusText, url, headers.get(), text(), json(),
// arrayBuffer(), bytes()). Only the hosts the function was deployed with (allow=HOST[:PORT]) are reachable; a refused
// host rejects with an Error naming it (code ERR_FAAS_DENIED; ETIMEDOUT at the call's deadline; ERR_FAAS_FETCH else).
// The request goes through the file /run/faas/fetch (present only with grants): `METHOD URL`, `Name: value` lines, an
// empty line and the body are written; the answer (`ok STATUS URL` or `denied|error|timeout MESSAGE`, headers, an
// empty line, the body) is read to its end. The call blocks until the answer: a Promise only in name.
const FETCH_CHANNEL = '/run/faas/fetch';
const headerKey = (k) => String(k).toLowerCase();
class Headers {
  constructor(init) {
    defineHidden(this, '_m', new Map());
    if (init == null) return;
    if (init instanceof Headers) init.forEach((v, k) => this.append(k, v));
    else if (typeof init[Symbol.iterator] === 'function') for (const [k, v] of init) this.append(k, v);
    else for (const k of Object.keys(init)) this.append(k, init[k]);
  }
  append(k, v) { const key = headerKey(k), old = this._m.get(key); this._m.set(key, old === undefined ? String(v) : `${old}, ${v}`); }
  set(k, v) { this._m.set(headerKey(k), String(v)); }
  get(k) { const v = this._m.get(headerKey(k)); return v === undefined ? null : v; }
  has(k) { return this._m.has(headerKey(k)); }
  delete(k) { this._m.delete(headerKey(k)); }
  forEach(cb, self) { for (const [k, v] of this) cb.call(self, v, k, this); }
  *entries() { yield* [...this._m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); }
  *keys() { for (const [k] of this.entries()) yield k; }
  *values() { for (const [, v] of this.entries()) yield v; }
  [Symbol.iterator]() { return this.entries(); }
}
const STATUS_TEXT = { 200: 'OK', 201: 'Created', 204: 'No Content', 301: 'Moved Permanently', 302: 'Found', 304: 'Not Modified',
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests',
  500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };
const bodyBytes = (b) => (b == null ? new Uint8Array(0) : b instanceof ArrayBuffer ? new Uint8Array(b) : toBytes(b, 'utf8'));
class Response {
  constructor(body, init = {}) {
    defineHidden(this, '_body', bodyBytes(body));
    this.status = init.status === undefined ? 200 : init.status;
    this.statusText = init.statusText !== undefined ? init.statusText : STATUS_TEXT[this.status] || '';
    this.headers = init.headers instanceof Headers ? init.headers : new Headers(init.headers);
    this.url = init.url || '';
    this.redirected = !!init.redirected;
    this.type = 'basic';
    this.bodyUsed = false;
  }
  get ok() { return this.status >= 200 && this.status < 300; }
  _take() {
    if (this.bodyUsed) return Promise.reject(new TypeError('Body is unusable: Body has already been read'));
    this.bodyUsed = true; return Promise.resolve(this._body);
  }
  text() { return this._take().then((b) => utf8Decode(b)); }
  json() { return this.text().then((t) => JSON.parse(t)); }
  arrayBuffer() { return this._take().then((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)); }
  bytes() { return this._take().then((b) => new Uint8Array(b)); }
  clone() { if (this.bodyUsed) throw new TypeError('Response.clone: Body has already been consumed.'); return new Response(new Uint8Array(this._body), this); }
}
function fetchError(host, outcome, why) {
  const what = outcome === 'denied' ? 'refused' : outcome === 'timeout' ? 'timed out' : 'failed';
  const e = new Error(`fetch to ${host} ${what}: ${why}`);
  e.code = outcome === 'denied' ? 'ERR_FAAS_DENIED' : outcome === 'timeout' ? 'ETIMEDOUT' : 'ERR_FAAS_FETCH';
  e.host = host;
  return e;
}
function fetchSync(input, init) {
  const url = String(input && typeof input === 'object' && 'url' in input ? input.url : input);
  init = init || {};
  const host = url.replace(/^[^:/]*:\/\//, '').split(/[/?#]/)[0].replace(/^.*@/, '');
  if (os.stat(FETCH_CHANNEL)[1] !== 0)
    throw fetchError(host, 'denied', 'this function has no granted hosts (deploy it with allow=HOST)');
  const line = (v) => String(v).replace(/[\r\n]/g, ' ');
  let head = `${line(init.method || 'GET').toUpperCase()} ${line(url)}\n`;
  for (const [k, v] of new Headers(init.headers)) head += `${line(k)}: ${line(v)}\n`;
  const body = bodyBytes(init.body);
  const request = Buffer.concat([encodeString(head + '\n', 'utf8'), body]);
  const fd = os.open(FETCH_CHANNEL, os.O_RDWR);
  if (fd < 0) throw fetchError(host, 'error', errnoErr(-fd, 'open', FETCH_CHANNEL).message);
  let answer;
  try { writeAll(fd, request); answer = readFd(fd); }
  catch (e) { throw fetchError(host, 'error', e.message); }
  finally { os.close(fd); }
  let end = -1;
  for (let i = 0; i + 1 < answer.length; i++) if (answer[i] === 10 && answer[i + 1] === 10) { end = i; break; }
  if (end < 0) throw fetchError(host, 'error', 'no answer');
  const lines = utf8Decode(answer, 0, end).split('\n');
  const first = lines.shift(), sp = first.indexOf(' ');
  const outcome = first.slice(0, sp < 0 ? first.length : sp), rest = sp < 0 ? '' : first.slice(sp + 1);
  if (outcome !== 'ok') throw fetchError(host, outcome, rest);
  const sp2 = rest.indexOf(' ');
  const status = +rest.slice(0, sp2 < 0 ? rest.length : sp2), finalUrl = sp2 < 0 ? url : rest.slice(sp2 + 1);
  const headers = new Headers();
  for (const l of lines) { const c = l.indexOf(':'); if (c > 0) headers.append(l.slice(0, c).trim(), l.slice(c + 1).trim()); }
  return new Response(answer.subarray(end + 2), { status, headers, url: finalUrl, redirected: finalUrl !== url });
}
function fetch(input, init) {
  try { return Promise.resolve(fetchSync(input, init)); } catch (e) { return Promise.reject(e); }
}

// ---------------------------------------------------------------- globals
Object.assign(g, { process, Buffer, console, setTimeout, setInterval, clearTimeout, clearInterval: clearTimeout, setImmediate, clearImmediate, queueMicrotask, TextEncoder, TextDecoder, fetch, Headers, Response });
g.structuredClone = (v) => {
  try { const ab = bjson.write(v, bjson.WRITE_OBJ_REFERENCE); return bjson.read(ab, 0, ab.byteLength, bjson.READ_OBJ_REFERENCE); }
  catch (e) { throw new DOMException(`${inspect(v, { depth: 0 })} could not be cloned (${e.message}).`, 'DataCloneError'); }
};
g.atob = (s) => decodeBytes(b64Decode(String(s).replace(/\s/g, '')), 'latin1');
g.btoa = (s) => { s = String(s); if (/[^\x00-\xff]/.test(s)) throw new DOMException('Invalid character', 'InvalidCharacterError'); return b64Encode(encodeString(s, 'latin1')); };
for (const k of ['process', 'Buffer', 'console', 'setTimeout', 'setInterval', 'clearTimeout', 'clearInterval', 'setImmediate', 'clearImmediate', 'TextEncoder', 'TextDecoder', 'atob', 'btoa', 'structuredClone', 'global', 'fetch', 'Headers', 'Response'])
  Object.defineProperty(g, k, { enumerable: false });

// ---------------------------------------------------------------- CommonJS loader, stack traces, errors
// Wrapper prefix stays on line 1 so user line numbers are unchanged.
const WRAP = '(function (exports, require, module, __filename, __dirname) { ';
const codeMap = new Map();     // wrapper fn -> file (marks the module's top-level frame)
let loadingFile = null;        // all "<evalScript>" frames are attributed to CODE (qjs gives no per-eval filename)
const srcLines = new Map();
Error.stackTraceLimit = 10;
// prelude frames: its own file, or no file at all when loaded as debug-stripped bytecode
const isPreludeFrame = (cs) => { const f = cs.getFileName(); return f === PRELUDE || (!f && !cs.isNative()); };
Error.prepareStackTrace = (err, callsites) => {
  let head;
  try { head = Error.prototype.toString.call(err); } catch { head = 'Error'; }
  const frames = [];
  for (let i = 0; i < callsites.length; i++) {
    const cs = callsites[i];
    let file = cs.getFileName(), line = cs.getLineNumber(), col = cs.getColumnNumber(), fn = cs.getFunctionName();
    if (isPreludeFrame(cs)) continue;                           // hide prelude internals ...
    if (cs.isNative() && (i + 1 === callsites.length || isPreludeFrame(callsites[i + 1]))) continue;  // ... and fn.call/apply done by it
    if (file === '<evalScript>') {
      file = codeMap.get(cs.getFunction()) || loadingFile || CODE;
      if (line === 1) col = col - WRAP.length + 1;               // first line: qjs column is 0-based and includes the wrapper
    }
    if (cs.isNative()) { frames.push(`    at ${fn || '<anonymous>'} (native)`); continue; }
    const loc = file ? `${file}:${line}:${col}` : '<anonymous>';
    if (!fn || fn === '<eval>') fn = cs.getFunction() && codeMap.has(cs.getFunction()) ? 'Object.<anonymous>' : '';
    frames.push(fn ? `    at ${fn} (${loc})` : `    at ${loc}`);
  }
  return frames.length ? `${head}\n${frames.join('\n')}` : head;
};
function sourceLine(file, line) {
  let lines = srcLines.get(file);
  if (!lines) { try { lines = fs.readFileSync(file, 'utf8').split(/\r?\n/); } catch { lines = []; } srcLines.set(file, lines); }
  return lines[line - 1];
}
function locationHeader(err) {     // "file:line\n<source line>\n\n" like node (no caret: qjs columns are approximate)
  let m;
  if (err && err._faasLoc) m = err._faasLoc;
  else if (err && typeof err.stack === 'string') {
    const r = /\n    at (?:.*? \()?(\/[^:()]+):(\d+):(-?\d+)\)?/.exec(err.stack);
    if (r) m = { file: r[1], line: +r[2], col: +r[3] };
  }
  if (!m) return '';
  const src = sourceLine(m.file, m.line);
  if (src === undefined) return '';
  return `${m.file}:${m.line}\n${src}\n\n`;
}
let inFatal = false;
function fatal(e) {
  if (inFatal) { std.err.puts(`${e instanceof Error ? e.stack : inspect(e)}\n`); std.out.flush(); std.exit(7); }
  inFatal = true;
  try {
    flushOut();
    if (!exiting && process.listenerCount('uncaughtException')) { process.emit('uncaughtException', e, 'uncaughtException'); inFatal = false; return; }
    const isErr = e instanceof Error;
    let msg = locationHeader(isErr ? e : undefined);
    if (!isErr) msg += inspect(e) + '\n(thrown value is not an Error: no stack trace)';
    else if (!/\n    at /.test(String(e.stack))) msg += String(e.stack || e);  // e.g. stack overflow: no frames captured
    else msg += inspect(e);
    std.err.puts(msg + '\n');
    process.exitCode = 1;
    if (!exiting) { exiting = true; process.emit('exit', 1); }
  } catch (e2) { std.err.puts(`fatal: ${e2}\n`); }
  std.out.flush(); std.err.flush();
  std.exit(1);
}
function compile(file, src, opts) {
  if (src.startsWith('#!')) src = '//' + src.slice(2);         // shebang keeps its line
  if (src.charCodeAt(0) === 0xfeff) src = src.slice(1);
  loadingFile = file;
  try { return std.evalScript(WRAP + src + '\n})', Object.assign(Object.create(null), { backtrace_barrier: true }, opts)); }
  catch (e) {
    if (e instanceof SyntaxError) {
      const r = /^ {4}at .*?:(\d+)/m.exec(e.stack || '');
      const nLines = src.split('\n').length;
      const line = r ? Math.min(+r[1], nLines) : 1;
      e._faasLoc = { file, line };
      Object.defineProperty(e, '_faasLoc', { enumerable: false });
      if (ESM_SYNTAX.test(src)) e.message += ' (ES module syntax in a CommonJS file: name it .mjs, or set "type": "module" in package.json)';
      e.stack = `SyntaxError: ${e.message}\n    at ${file}:${line}`;
    }
    throw e;
  } finally { loadingFile = null; }
}
const moduleCache = Object.create(null);
class Module {
  constructor(id, parent) { this.id = id; this.filename = id; this.path = path.dirname(id); this.exports = {}; this.loaded = false; this.children = []; this.paths = []; this.parent = parent; }
  require(id) { return makeRequire(this)(id); }
}
const isFile = (f) => { const st = os.stat(f); return st[1] === 0 && (st[0].mode & os.S_IFMT) === os.S_IFREG; };
const readJson = (f) => { try { return JSON.parse(fs.readFileSync(f, 'utf8')); } catch { return undefined; } };
function resolveFile(req, base) {
  const p = req.startsWith('/') ? path.normalize(req) : path.resolve(base, req);
  for (const c of [p, p + '.js', p + '.json', p + '.cjs', p + '.mjs']) if (isFile(c)) return c;
  const pkg = readJson(p + '/package.json');
  return (pkg && typeof pkg.main === 'string' && pkg.main && resolveFile(pkg.main.startsWith('/') ? '.' + pkg.main : pkg.main, p)) ||
    [p + '/index.js', p + '/index.json', p + '/index.mjs'].find(isFile) || null;
}
// Conditions of package.json "exports", in Node's order of preference for each loader.
const REQUIRE_CONDITIONS = ['require', 'node', 'default'];
const IMPORT_CONDITIONS = ['import', 'node', 'default'];
// One "exports" target: a string ('*' replaced by what a pattern matched), the first
// target of an array that resolves, or the first key of a conditions object in `conds`.
function exportTarget(t, conds, star) {
  if (typeof t === 'string') return star === undefined ? t : t.split('*').join(star);
  if (Array.isArray(t)) { for (const x of t) { const r = exportTarget(x, conds, star); if (r) return r; } return null; }
  if (t && typeof t === 'object') for (const k of Object.keys(t)) if (conds.includes(k)) { const r = exportTarget(t[k], conds, star); if (r) return r; }
  return null;
}
// The file "exports" maps subpath `sub` ('.' or './x') to, inside the package directory only.
function resolveExports(dir, exp, sub, conds) {
  const isMap = exp && typeof exp === 'object' && !Array.isArray(exp) && Object.keys(exp).some((k) => k.startsWith('.'));
  const map = isMap ? exp : { '.': exp };
  let target = null;
  if (Object.prototype.hasOwnProperty.call(map, sub)) target = exportTarget(map[sub], conds);
  else {
    let best = -1;                                   // the longest matching "./prefix*suffix" pattern wins
    for (const k of Object.keys(map)) {
      const i = k.indexOf('*');
      if (i < 0 || i <= best) continue;
      const pre = k.slice(0, i), post = k.slice(i + 1);
      if (sub.length >= pre.length + post.length && sub.startsWith(pre) && sub.endsWith(post)) {
        best = i; target = exportTarget(map[k], conds, sub.slice(pre.length, sub.length - post.length));
      }
    }
  }
  if (typeof target !== 'string' || !target.startsWith('./')) return null;
  const f = path.join(dir, target);
  return f.startsWith(dir + '/') && isFile(f) ? f : null;
}
// Node's lookup of a bare name ('pkg', 'pkg/sub', '@scope/pkg/sub'): node_modules/pkg in the
// importing file's directory, then in each parent's (a project ships its node_modules/),
// through the package's "exports" when it has them, else its "main" and plain file lookup.
function resolveBare(req, base, conds) {
  const parts = req.split('/'), n = req.startsWith('@') ? 2 : 1;
  const name = parts.slice(0, n).join('/'), sub = parts.length > n ? './' + parts.slice(n).join('/') : '.';
  for (let dir = base; ; dir = path.dirname(dir)) {
    if (path.basename(dir) !== 'node_modules') {
      const pkgDir = path.join(dir, 'node_modules', name);
      const pkg = readJson(pkgDir + '/package.json');
      if (pkg && pkg.exports !== undefined && pkg.exports !== null) {
        const f = resolveExports(pkgDir, pkg.exports, sub, conds);
        if (f) return f;
        throw makeErr(Error, 'ERR_PACKAGE_PATH_NOT_EXPORTED', `Package subpath '${sub}' is not defined by "exports" in ${pkgDir}/package.json`);
      }
      const f = resolveFile(sub, pkgDir);
      if (f) return f;
    }
    if (dir === '/' || dir === '.' || dir === '') return null;
  }
}
const isPathLike = (id) => id.startsWith('./') || id.startsWith('../') || id.startsWith('/') || id === '.' || id === '..';
function makeRequire(mod) {
  const require = (id) => {
    if (typeof id !== 'string' || id === '') throw makeErr(TypeError, 'ERR_INVALID_ARG_VALUE', `The argument 'id' must be a non-empty string. Received ${inspect(id)}`);
    const name = id.startsWith('node:') ? id.slice(5) : id;
    if (Object.prototype.hasOwnProperty.call(builtins, name)) return builtins[name];
    const file = isPathLike(id) ? resolveFile(id, mod.path) : resolveBare(id, mod.path, REQUIRE_CONDITIONS);
    if (!file) { const e = makeErr(Error, 'MODULE_NOT_FOUND', `Cannot find module '${id}'\nRequire stack:\n- ${mod.filename}`); e.requireStack = [mod.filename]; throw e; }
    return loadModule(file, mod).exports;
  };
  require.resolve = (id) => { const n = id.startsWith('node:') ? id.slice(5) : id; if (builtins[n]) return id; const f = isPathLike(id) ? resolveFile(id, mod.path) : resolveBare(id, mod.path, REQUIRE_CONDITIONS); if (!f) throw makeErr(Error, 'MODULE_NOT_FOUND', `Cannot find module '${id}'`); return f; };
  require.cache = moduleCache;
  require.main = mainModule;
  return require;
}
function loadModule(file, parent) {
  if (moduleCache[file]) return moduleCache[file];
  const mod = new Module(file, parent);
  moduleCache[file] = mod;
  if (parent) parent.children.push(mod);
  const src = fs.readFileSync(file, 'utf8');
  if (file.endsWith('.json')) { try { mod.exports = JSON.parse(src); } catch (e) { e.message = file + ': ' + e.message; throw e; } mod.loaded = true; return mod; }
  const fn = compile(file, src);
  codeMap.set(fn, file);
  try { fn.call(mod.exports, mod.exports, makeRequire(mod), mod, file, path.dirname(file)); }
  catch (e) { delete moduleCache[file]; throw e; }
  mod.loaded = true;
  return mod;
}
let mainModule;

// ---------------------------------------------------------------- ES modules (import)
// qjs_snapshot.c's module normalizer and loader call resolveImport and loadImport (they are
// properties of start; qjs_snapshot.c keeps its own references to them). An ES module is a .mjs file, a .js file
// under a package.json with "type": "module", or a .js file that does not parse as CommonJS
// but does as a module (Node's syntax detection: import/export or top-level await). .cjs,
// .json and other .js files load as CommonJS and are imported as their module.exports (the
// default export) with its keys as named exports, as in Node; so are the builtins ('fs' or
// 'node:fs').
// Line by line, without \s spanning lines: /^\s*.../m backtracks quadratically on blank lines.
const ESM_SYNTAX = /^[ \t]*(import[ \t]*[\w{*'"]|export[ \t]+[\w{*])/m;
function packageType(file) {        // "type" of the nearest package.json
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const pkg = readJson(dir + '/package.json');
    if (pkg) return pkg.type;
    if (dir === '/' || dir === '.' || dir === '') return undefined;
  }
}
function isEsModule(file, src) {
  if (file.endsWith('.mjs')) return true;
  if (file.endsWith('.cjs') || file.endsWith('.json')) return false;
  const type = packageType(file);
  if (type === 'module' || type === 'commonjs') return type === 'module';
  const esmSyntax = ESM_SYNTAX.test(src);
  if (!esmSyntax && !/\bawait\b/.test(src)) return false;
  try { compile(file, src, { compile_only: true }); return false; } catch { /* not CommonJS */ }
  // Parsed under another name: the runtime keeps every module it compiled, by name.
  try { compileModule(src, '<detect>'); return true; } catch { return esmSyntax; }
}
function resolveImport(base, id) {
  const name = id.startsWith('node:') ? id.slice(5) : id;
  if (Object.prototype.hasOwnProperty.call(builtins, name)) return 'node:' + name;
  if (id.startsWith('file://')) id = decodeURIComponent(id.slice(7));
  // import() in CommonJS code has no file of its own to QuickJS: it resolves from the entry's directory
  const from = base.startsWith('/') && base !== PRELUDE ? base : CODE;
  const file = isPathLike(id) ? resolveFile(id, path.dirname(from)) : resolveBare(id, path.dirname(from), IMPORT_CONDITIONS);
  if (!file) throw makeErr(Error, 'ERR_MODULE_NOT_FOUND', `Cannot find module '${id}' imported from ${from}`);
  return file;
}
const exportNames = (x) => Object.freeze(x !== null && (typeof x === 'object' || typeof x === 'function')
  ? Object.keys(x).filter((k) => k !== 'default' && /^[A-Za-z_$][\w$]*$/.test(k)) : []);
const importRecords = new Map();    // the loader asks twice for a CommonJS module: same answer
const mapGet = Map.prototype.get, mapSet = Map.prototype.set;   // function code may replace them
function loadImport(name) {
  let rec = Reflect.apply(mapGet, importRecords, [name]);
  if (rec !== undefined) return rec;
  if (name.startsWith('node:')) { const x = builtins[name.slice(5)]; rec = { exports: x, names: exportNames(x) }; }
  else {
    let src = fs.readFileSync(name, 'utf8');
    if (src.charCodeAt(0) === 0xfeff) src = src.slice(1);
    if (isEsModule(name, src)) rec = src;
    else { const x = loadModule(name, null).exports; rec = { exports: x, names: name.endsWith('.json') ? Object.freeze([]) : exportNames(x) }; }
  }
  Reflect.apply(mapSet, importRecords, [name, rec]);
  return rec;
}

// ---------------------------------------------------------------- main
// One call (qjs_snapshot.c's faas_main calls this with argv after argv[0]).
function start(args) {
ARGS = args;
timeOrigin = Date.now() - perfNow();
Object.assign(env, std.getenviron());
CODE = env.FAAS_CODE || '/faas/code.js';
process.argv = ['/usr/local/bin/node', CODE].concat(ARGS.filter((a) => a !== '--check'));
if (ARGS[0] === '--check') {
  let src;
  try { src = fs.readFileSync(CODE, 'utf8'); } catch (e) { std.err.puts(`Error: cannot read ${CODE}: ${e.message}\n`); std.exit(2); }
  try { if (isEsModule(CODE, src)) compileModule(src.charCodeAt(0) === 0xfeff ? src.slice(1) : src, CODE); else compile(CODE, src, { compile_only: true }); }
  catch (e) { std.err.puts(locationHeader(e) + (e instanceof Error ? e.stack : String(e)) + '\n'); std.exit(1); }
  std.exit(0);
}
mainModule = new Module(CODE, null);
mainModule.id = '.';
try {
  let src;
  try { src = fs.readFileSync(CODE, 'utf8'); } catch (e) { std.err.puts(`Error: Cannot find module '${CODE}'\n`); std.exit(1); }
  if (isEsModule(CODE, src)) {
    import(CODE).catch(fatal);      // top-level await keeps the call going while it has work
    afterCallback();
    return;
  }
  moduleCache[CODE] = mainModule;
  const fn = compile(CODE, src);
  codeMap.set(fn, CODE);
  fn.call(mainModule.exports, mainModule.exports, makeRequire(mainModule), mainModule, CODE, path.dirname(CODE));
  mainModule.loaded = true;
} catch (e) { fatal(e); }
afterCallback();
}
start.resolveImport = resolveImport;
start.loadImport = loadImport;
return start;
})(globalThis);
