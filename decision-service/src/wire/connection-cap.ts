// The cap on open connections of one transport (VERDICT_MAX_CONNECTIONS), enforced by eviction:
// at the cap a newcomer is admitted and the connection idle longest is closed instead, so a
// client holding thousands of idle connections (to exhaust the service's file descriptors or its
// cap) only ever loses its own least used ones, while a gateway's new connection gets through.
// A gateway that is deciding is never the least recently active of thousands of idle
// connections; one of its pooled connections idle for longer than the flood is, and the gateway
// simply reconnects (nginx's pool does).
//
// Connections that have not yet proved the gateway secret (frames: no HELLO yet, where one is
// required) go first, oldest activity first; then the least recently active of the rest. Both
// orders are intrusive linked lists: admit, touch and remove are O(1), so activity can be noted
// on every read.

export type EvictReason = 'unauthenticated' | 'least_recent';

/** One connection's place in its list; `evict` closes it (it is already out of the lists). */
export class CapEntry {
  prev: CapEntry | null = null;
  next: CapEntry | null = null;
  list: CapList | null = null;

  constructor(readonly evict: (reason: EvictReason) => void) {}
}

class CapList {
  head: CapEntry | null = null;
  tail: CapEntry | null = null;

  push(e: CapEntry): void {
    e.list = this;
    e.prev = this.tail;
    e.next = null;
    if (this.tail) this.tail.next = e;
    else this.head = e;
    this.tail = e;
  }

  unlink(e: CapEntry): void {
    if (e.prev) e.prev.next = e.next;
    else this.head = e.next;
    if (e.next) e.next.prev = e.prev;
    else this.tail = e.prev;
    e.prev = null;
    e.next = null;
    e.list = null;
  }
}

export class ConnectionCap {
  /** Least recently active first. */
  private readonly unauthenticated = new CapList();
  private readonly authenticated = new CapList();
  private open = 0;

  constructor(readonly max: number) {}

  get size(): number {
    return this.open;
  }

  /** Takes a new connection in, evicting as many as needed to stay at the cap. */
  admit(e: CapEntry, authenticated: boolean): void {
    while (this.open >= this.max) {
      const reason: EvictReason = this.unauthenticated.head ? 'unauthenticated' : 'least_recent';
      const victim = this.unauthenticated.head ?? this.authenticated.head;
      if (!victim) break;
      this.remove(victim);
      victim.evict(reason);
    }
    (authenticated ? this.authenticated : this.unauthenticated).push(e);
    this.open++;
  }

  /** The connection was active (bytes arrived): it moves to the back of the eviction order. */
  touch(e: CapEntry): void {
    const list = e.list;
    if (list === null || list.tail === e) return;
    list.unlink(e);
    list.push(e);
  }

  /** The connection proved the gateway secret. */
  authenticate(e: CapEntry): void {
    if (e.list !== this.unauthenticated) return;
    this.unauthenticated.unlink(e);
    this.authenticated.push(e);
  }

  /** The connection closed (idempotent). */
  remove(e: CapEntry): void {
    const list = e.list;
    if (list === null) return;
    list.unlink(e);
    this.open--;
  }
}
