/* Verdict proof-of-work solver: the reference client of gateway-plugin/CONTRACT.md,
 * "Challenges and clearance (issue 13)".
 *
 * A challenge hands out a signed nonce and a difficulty d; the answer is the proof
 * "<nonce>.<counter>" (counter: 1-12 decimal digits) whose SHA-256 starts with d zero bits.
 *
 * Use it as a classic <script> (defines globalThis.VerdictSolver) or from Node
 * (require / createRequire: module.exports). Plain ES2017, no dependencies, and no
 * crypto.subtle, which plain-http pages do not have.
 *
 *   VerdictSolver.solve(nonce, d, {from, to}?)           -> proof string (synchronous)
 *   VerdictSolver.solveAsync(nonce, d, {onProgress, sliceMs}) -> Promise of the proof
 *   VerdictSolver.solveRange(nonce, d, from, to)        -> first counter in [from, to), or -1
 *   VerdictSolver.fetchWithClearance(url, init)          -> fetch that answers one 429 challenge
 *   VerdictSolver.sha256Hex(text), VerdictSolver.leadingZeroBits(hexOrBytes)
 *
 * Speed: the "<nonce>." prefix is hashed once (its midstate); each attempt only writes the
 * counter's digits into the last one or two blocks and compresses those, allocating nothing.
 */
(function () {
  'use strict';

  var ALGORITHM = 'sha256-leading-zero-bits';
  var PROOF_HEADER = 'X-Verdict-Proof';
  var MAX_COUNTER = 999999999999; // 12 digits

  var K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ]);
  var IV = new Int32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
  ]);
  var W = new Int32Array(64); // message schedule, reused by every compression

  /** One SHA-256 compression of the 64 bytes at bytes[off] into state (8 Int32). */
  function compress(state, bytes, off) {
    var i, s0, s1, t1, t2, x;
    for (i = 0; i < 16; i++, off += 4) {
      W[i] = (bytes[off] << 24) | (bytes[off + 1] << 16) | (bytes[off + 2] << 8) | bytes[off + 3];
    }
    for (i = 16; i < 64; i++) {
      x = W[i - 15];
      s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      x = W[i - 2];
      s1 = ((x >>> 17) | (x << 15)) ^ ((x >>> 19) | (x << 13)) ^ (x >>> 10);
      W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
    }
    var a = state[0], b = state[1], c = state[2], d = state[3];
    var e = state[4], f = state[5], g = state[6], h = state[7];
    for (i = 0; i < 64; i++) {
      s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      t1 = (h + s1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
      s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      t2 = (s0 + ((a & b) ^ (c & (a ^ b)))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0;
      d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    state[0] = (state[0] + a) | 0; state[1] = (state[1] + b) | 0;
    state[2] = (state[2] + c) | 0; state[3] = (state[3] + d) | 0;
    state[4] = (state[4] + e) | 0; state[5] = (state[5] + f) | 0;
    state[6] = (state[6] + g) | 0; state[7] = (state[7] + h) | 0;
  }

  function utf8(text) {
    return new TextEncoder().encode(String(text));
  }

  /** Leading zero bits of the 8-word digest. */
  function zeroBits(state) {
    for (var i = 0; i < 8; i++) {
      if (state[i] !== 0) return i * 32 + Math.clz32(state[i]);
    }
    return 256;
  }

  /** Pads a `total`-byte message whose last `used` bytes sit in tail (under 512 MB); returns its block count. */
  function pad(tail, used, total) {
    var end = used + 9 <= 64 ? 64 : 128, bits = total * 8;
    tail[used] = 0x80;
    tail.fill(0, used + 1, end - 4);
    for (var i = 1; i <= 4; i++, bits >>>= 8) tail[end - i] = bits & 255;
    return end / 64;
  }

  /** The midstate of `prefix`, and a tail buffer for the rest of the message and its padding. */
  function Searcher(prefix) {
    var bytes = utf8(prefix);
    var full = bytes.length - (bytes.length % 64);
    this.mid = new Int32Array(IV);
    for (var off = 0; off < full; off += 64) compress(this.mid, bytes, off);
    this.rest = bytes.length - full;
    this.length = bytes.length;
    this.tail = new Uint8Array(128);
    this.tail.set(bytes.subarray(full));
    this.state = new Int32Array(8);
    this.digits = 0;
    this.blocks = 0;
  }

  /** Appends `counter` in decimal after the prefix and pads the message. */
  Searcher.prototype.write = function (counter) {
    var text = String(counter);
    for (var i = 0; i < text.length; i++) this.tail[this.rest + i] = text.charCodeAt(i);
    this.digits = text.length;
    this.blocks = pad(this.tail, this.rest + text.length, this.length + text.length);
  };

  /** Adds one to the decimal counter in place; false when it needs one more digit. */
  Searcher.prototype.bump = function () {
    for (var i = this.rest + this.digits - 1; i >= this.rest; i--) {
      if (this.tail[i] !== 57) { this.tail[i]++; return true; }
      this.tail[i] = 48;
    }
    return false;
  };

  /** Leading zero bits of SHA-256(prefix .. counter). */
  Searcher.prototype.zeroBits = function () {
    this.state.set(this.mid);
    compress(this.state, this.tail, 0);
    if (this.blocks === 2) compress(this.state, this.tail, 64);
    return zeroBits(this.state);
  };

  /** The first counter in [from, to) that reaches `difficulty`, else -1. */
  Searcher.prototype.search = function (difficulty, from, to) {
    this.write(from);
    for (var c = from; c < to; c++) {
      if (this.zeroBits() >= difficulty) return c;
      if (!this.bump()) this.write(c + 1);
    }
    return -1;
  };

  var last = { nonce: null, searcher: null }; // solveAsync calls solveRange once per slice

  function searcherFor(nonce) {
    if (last.nonce !== nonce) last = { nonce: nonce, searcher: new Searcher(nonce + '.') };
    return last.searcher;
  }

  function checkArgs(nonce, difficulty) {
    if (typeof nonce !== 'string' || nonce === '') throw new TypeError('nonce must be a non-empty string');
    if (!(difficulty >= 0 && difficulty <= 256 && Math.floor(difficulty) === difficulty)) {
      throw new RangeError('difficulty must be an integer 0..256');
    }
  }

  /** The first counter in [from, to) whose proof has `difficulty` leading zero bits, else -1. */
  function solveRange(nonce, difficulty, from, to) {
    checkArgs(nonce, difficulty);
    return searcherFor(nonce).search(difficulty, Math.max(0, from), Math.min(to, MAX_COUNTER + 1));
  }

  /** The proof "<nonce>.<counter>" (synchronous; blocks for ~2^difficulty hashes). */
  function solve(nonce, difficulty, opts) {
    var from = (opts && opts.from) || 0;
    var to = opts && opts.to !== undefined ? opts.to : MAX_COUNTER + 1;
    var c = solveRange(nonce, difficulty, from, to);
    if (c < 0) throw new Error('no proof in counters ' + from + '..' + (to - 1));
    return nonce + '.' + c;
  }

  /** solve() in slices of ~sliceMs (default 50) with a yield to the event loop between them. */
  async function solveAsync(nonce, difficulty, opts) {
    var sliceMs = (opts && opts.sliceMs) || 50;
    var onProgress = opts && opts.onProgress;
    var expected = Math.pow(2, difficulty), started = Date.now(), from = 0, batch = 1024;
    for (;;) {
      var t0 = Date.now();
      var c = solveRange(nonce, difficulty, from, from + batch);
      if (c >= 0) return nonce + '.' + c;
      from += batch;
      if (from > MAX_COUNTER) throw new Error('no proof in 12-digit counters');
      var spent = Date.now() - t0;
      batch = Math.max(256, Math.min(batch * 4, Math.round(batch * sliceMs / Math.max(spent, 1))));
      if (onProgress) onProgress({ tried: from, expected: expected, ms: Date.now() - started });
      await new Promise(function (resolve) { setTimeout(resolve, 0); });
    }
  }

  /** SHA-256 of the UTF-8 bytes of `text`, lower-case hex. */
  function sha256Hex(text) {
    var s = new Searcher(text), state = s.state;
    var blocks = pad(s.tail, s.rest, s.length);
    state.set(s.mid);
    for (var b = 0; b < blocks; b++) compress(state, s.tail, b * 64);
    var hex = '';
    for (var i = 0; i < 8; i++) hex += ('0000000' + (state[i] >>> 0).toString(16)).slice(-8);
    return hex;
  }

  /** Leading zero bits of a hex string or a byte array. */
  function leadingZeroBits(value) {
    var bits = 0, perItem = typeof value === 'string' ? 4 : 8;
    for (var i = 0; i < value.length; i++) {
      var v = perItem === 4 ? parseInt(value[i], 16) : value[i];
      if (v !== 0) return bits + Math.clz32(v) - (32 - perItem);
      bits += perItem;
    }
    return bits;
  }

  /** The challenge descriptor of a 429 answer, or null when it is not one. */
  async function challengeOf(res) {
    if (res.status !== 429) return null;
    try {
      var c = (await res.clone().json()).challenge;
      return c && c.algorithm === ALGORITHM && typeof c.nonce === 'string' ? c : null;
    } catch (e) {
      return null; // not JSON: a plain 429
    }
  }

  /** fetch(url, init) (url: a string or URL, not a Request: its body could not be sent twice);
   * a 429 proof-of-work challenge is solved and the request sent once more with the proof. */
  async function fetchWithClearance(url, init) {
    var res = await fetch(url, init);
    var c = await challengeOf(res);
    if (c === null) return res;
    var proof = await solveAsync(c.nonce, c.difficulty);
    var headers = new Headers(init && init.headers);
    headers.set((c.answer && c.answer.header) || PROOF_HEADER, proof);
    return fetch(url, Object.assign({}, init, { headers: headers }));
  }

  var api = {
    ALGORITHM: ALGORITHM,
    solve: solve,
    solveAsync: solveAsync,
    solveRange: solveRange,
    fetchWithClearance: fetchWithClearance,
    sha256Hex: sha256Hex,
    leadingZeroBits: leadingZeroBits
  };
  if (typeof module === 'object' && module && module.exports) module.exports = api;
  else globalThis.VerdictSolver = api;
})();
