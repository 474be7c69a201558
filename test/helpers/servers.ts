// Small real servers for the gateway e2e tests: an echo upstream, and fault-injection stand-ins
// for the decision service (slow, junk, closing). All listen on 127.0.0.1 only.
import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';

export interface Echoed { method: string; url: string; headers: IncomingHttpHeaders; body: string }

export interface Running { port: number; close(): Promise<void> }

/** Upstream that answers every request with the request it received, as JSON. */
export async function startEchoUpstream(): Promise<Running & { hits: number }> {
  const state = { hits: 0 };
  const srv = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => {
      state.hits++;
      const echoed: Echoed = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      res.setHeader('content-type', 'application/json');
      res.setHeader('x-auth-result', req.url?.includes('fail') ? 'failure' : 'ok');
      res.end(JSON.stringify(echoed));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    port,
    get hits() { return state.hits; },
    close: () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }),
  };
}

export type FaultKind =
  | 'blackhole' // accepts, reads, never answers
  | 'junk' // answers bytes that are not HTTP
  | 'bad-body' // HTTP 200 with a body that is not a DecideResponse
  | 'http-500' // HTTP 500
  | 'close' // accepts and closes at once
  | 'one-per-conn' // answers ALLOW (empty DecideResponse) to the first request of a connection, drops it on the second
  | 'alternate'; // a slow service: answers ALLOW to every other request at once, never to the rest

/** A TCP server standing in for a broken decision service; counts accepted connections. */
export async function startFaultServer(kind: FaultKind): Promise<Running & { connections: number; requests: number }> {
  const state = { connections: 0, requests: 0 };
  const sockets = new Set<Socket>();
  const srv = createTcpServer((sock) => {
    state.connections++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    if (kind === 'close') { sock.destroy(); return; }
    let buf = '';
    let served = 0;
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      // one request per blank line + body: good enough to count requests on a keep-alive socket
      while (buf.includes('\r\n\r\n')) {
        const head = buf.slice(0, buf.indexOf('\r\n\r\n'));
        const len = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < head.length + 4 + len) return;
        buf = buf.slice(head.length + 4 + len);
        state.requests++;
        if (kind === 'junk') sock.end('SSH-2.0-OpenSSH_9.2 garbage\r\n\r\n');
        else if (kind === 'bad-body') sock.write('HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 5\r\n\r\n\xff\xff\xff\xff\xff', 'latin1');
        else if (kind === 'one-per-conn') {
          if (served++ === 0) sock.write('HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n');
          else { sock.destroy(); return; }
        } else if (kind === 'alternate') {
          if (state.requests % 2 === 0) sock.write('HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n');
        } else if (kind === 'http-500') sock.write('HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\n{}');
        // blackhole: say nothing
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    port,
    get connections() { return state.connections; },
    get requests() { return state.requests; },
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); srv.close(() => r()); }),
  };
}
