// The connection flood of issue 10 ("20,000 idle frame connections exhausted file descriptors and
// every decision failed for as long as they were held"), as a child process: its sockets count
// against its own file-descriptor limit, not the measuring process's, and its work does not delay
// the measuring client. Used by flood-lib.ts.
//   tsx test/decision-service/flood-clients.ts <host> <port> <count> <idle|reconnect>
// Opens `count` TCP connections (256 connecting at a time) that send nothing; prints one JSON
// line of counts when all were tried, then one on every line read from stdin; exits on stdin end.
// idle: a connection the server closes stays closed. reconnect: it is opened again at once (the
// attacker who keeps its places), so the server must keep admitting and evicting.

import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

export interface FloodCounts {
  /** Connections open now. */
  open: number;
  /** Connects that succeeded, in all. */
  connected: number;
  /** Connections the server closed after they were established. */
  closedByServer: number;
  /** Connects refused or reset before being established. */
  failed: number;
  /** ms from the start until every connection was tried. */
  ms: number;
}

// tap runs every file of a directory it is given: without arguments this is not the child.
if (process.argv.length >= 6) await main();

async function main(): Promise<void> {
  const [host = '127.0.0.1', portText = '0', countText = '0', mode = 'idle'] = process.argv.slice(2);
  const port = Number(portText);
  const count = Number(countText);
  const sockets = new Set<Socket>();
  const c: FloodCounts = { open: 0, connected: 0, closedByServer: 0, failed: 0, ms: 0 };
  let stopping = false;
  const started = performance.now();

  const one = (): Promise<void> => new Promise((resolve) => {
    const s = connect({ host, port });
    let established = false;
    s.on('connect', () => {
      established = true;
      c.connected++;
      c.open++;
      sockets.add(s);
      s.resume(); // the frame server's CHALLENGE, and nothing else
      resolve();
    });
    s.on('error', () => {});
    s.on('close', () => {
      if (!established) {
        c.failed++;
        resolve();
        return;
      }
      c.open--;
      sockets.delete(s);
      if (stopping) return;
      c.closedByServer++;
      if (mode === 'reconnect') setImmediate(() => void one());
    });
  });

  let next = 0;
  await Promise.all(Array.from({ length: 256 }, async () => {
    while (next < count) {
      next++;
      await one();
    }
  }));
  c.ms = Math.round(performance.now() - started);
  process.stdout.write(`${JSON.stringify(c)}\n`);
  const lines = createInterface({ input: process.stdin });
  lines.on('line', () => process.stdout.write(`${JSON.stringify(c)}\n`));
  lines.on('close', () => {
    stopping = true;
    for (const s of sockets) s.destroy();
    process.exit(0);
  });
}
