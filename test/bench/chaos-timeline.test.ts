// bench/chaos: classifying requests (decided / failed open / lost / 5xx) and the seconds
// unprotected after a fault, on synthetic records.
import t from 'tap';
import type { LoadRecords } from '../../bench/chaos/load.ts';
import { analyse, decidedBefore, secondsBelow, secondsUnprotected, type Bucket } from '../../bench/chaos/timeline.ts';

const buckets = (shares: number[]): Bucket[] => shares.map((s, i) => ({
  t: i * 100, sent: 100, decided: Math.round(s * 100), failedOpen: 100 - Math.round(s * 100), causes: {}, lost: 0, s5xx: 0,
}));

t.test('a request is decided at the upstream without the fail-open header or answered by the gateway itself', async (t) => {
  const rec: LoadRecords = {
    sent: 6,
    intended: Float64Array.from([0, 10, 20, 30, 40, 150]),
    started: Float64Array.from([0, 10, 20, 30, 41, 150]),
    finished: Float64Array.from([1, 11, 21, 31, 45, 151]),
    status: Uint16Array.from([200, 200, 403, 0, 502, 200]),
    error: Uint8Array.from([0, 0, 0, 2, 0, 0]),
    resent: new Uint8Array(6),
    errorCodes: { UND_ERR_SOCKET: 1 },
  };
  const { counts, buckets: b } = analyse(rec, { cause: new Map([[0, ''], [1, 'timeout']]), firstTry: new Set([0, 1]) }, 0);
  t.equal(counts.sent, 6);
  t.equal(counts.decided, 2, 'the 200 without header and the 403');
  t.equal(counts.decidedAtGateway, 1);
  t.same(counts.failedOpenByCause, { timeout: 1 });
  t.equal(counts.socketErrors, 1);
  t.same(counts.socketErrorsByKind, { reset: 1 });
  t.equal(counts.byClass['5xx'], 1);
  t.equal(counts.unaccounted, 1, 'a 200 the upstream never logged is not counted as decided');
  t.equal(b.length, 2);
  t.same([b[0]!.sent, b[0]!.decided, b[0]!.lost, b[0]!.s5xx], [5, 2, 1, 1]);
});

t.test('a request resent after a reset is lost only when its first attempt had reached the upstream', async (t) => {
  const rec: LoadRecords = {
    sent: 3,
    intended: Float64Array.from([0, 10, 20]),
    started: Float64Array.from([0, 10, 20]),
    finished: Float64Array.from([5, 15, 25]),
    status: Uint16Array.from([200, 200, 200]),
    error: new Uint8Array(3),
    resent: Uint8Array.from([1, 1, 0]),
    errorCodes: { 'UND_ERR_SOCKET (resent)': 2 },
  };
  // 0: the first attempt never got there (nginx closed the idle connection under it); 1: it did
  const seen = { cause: new Map([[0, ''], [1, ''], [2, '']]), firstTry: new Set([1, 2]) };
  const { counts } = analyse(rec, seen, 0);
  t.equal(counts.resent, 2);
  t.equal(counts.decided, 2, 'the clean resend and the untouched request');
  t.equal(counts.socketErrors, 1, 'the application saw request 1 twice: its first answer was lost');
  t.same(counts.socketErrorsByKind, { 'reset after reaching the upstream': 1 });
});

t.test('seconds unprotected: from back until a protected bucket starts a protected second', async (t) => {
  // fault at 1.0 s, back at 1.5 s; failing until 2.0 s, one good bucket, one bad, then good
  const b = buckets([...Array(10).fill(1), ...Array(10).fill(0), 1, 0, ...Array(20).fill(1)]);
  t.equal(secondsUnprotected(b, 1500), 0.7);
  t.equal(secondsUnprotected(buckets(Array(30).fill(1)), 1550), 0, 'protected all along');
  t.equal(secondsUnprotected(buckets([...Array(10).fill(1), ...Array(15).fill(0)]), 1000), null, 'not back by the end');
  t.equal(secondsUnprotected(buckets([0, 0, 0.98, ...Array(12).fill(1)]), 0), 0.3, 'a 98% bucket is not protected');
  t.equal(secondsBelow(b), 1.1);
  t.equal(decidedBefore(b, 1000), 1);
});
