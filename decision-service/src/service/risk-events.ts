// Risk events (issue 17, point 4): what the rest of a security stack may want to act on, raised
// where Verdict learns it and delivered by whoever subscribes (the webhook, tests). Publishing is
// synchronous and cheap: a subscriber must queue, never block the decide path.
//
// Payloads hold only what an operator may see: keyed hashes (base64url) for session, device,
// principal and identifier keys, client addresses in clear (as in the audit trail), route names
// and counts. Never a raw identifier, token or sensitive value.

/** A campaign family was first seen acting on a key (deduplicated per family and key for a while). */
export interface CampaignDetected {
  type: 'campaign.detected';
  family: string; // reason family: "credential_stuffing", "enumeration", "traversal", "exfil", ...
  reasons: string[]; // the namespaced reason codes of the decision
  key: string; // the gateway cache key the verdict names ("ip:…", "session:…") or "" when none
  action: 'TAG' | 'CHALLENGE' | 'BLOCK';
  route: string;
  request_id: string;
  /** The key the family's evidence is about ("ip:…", "principal:…", "identifier:<keyed hash>"),
   *  which is also what the event is deduplicated on; absent when the publisher does not know it. */
  subject?: string;
}

/** A key was blocked (a cacheable BLOCK the gateways will enforce without a call). */
export interface KeyBlocked {
  type: 'key.blocked';
  key: string;
  ttl_s: number;
  reasons: string[];
  route: string;
  request_id: string;
}

/** An endpoint was first seen returning a sensitive kind unmasked. */
export interface EndpointExposure {
  type: 'endpoint.exposure';
  route: string; // the inventory's endpoint ("GET /api/users/{id}/profile")
  kind: string; // "cn_mobile", "cn_id", "bank_card", "email" or a policy pattern's name
  responses: number; // responses inspected on this endpoint so far
  unmasked_share: number; // share of inspected responses that held this kind unmasked, 0..1
}

export type RiskEvent = CampaignDetected | KeyBlocked | EndpointExposure;
export type RiskEventType = RiskEvent['type'];
/** Every event type, in the order the docs list them (VERDICT_WEBHOOK_EVENTS names a subset). */
export const RISK_EVENT_TYPES: readonly RiskEventType[] = ['key.blocked', 'campaign.detected', 'endpoint.exposure'];
export type RiskEventWithTime = RiskEvent & { id: string; ts: string };

type Subscriber = (event: RiskEventWithTime) => void;

/** One bus per service instance (the app creates it and hands it to the engine side and the webhook). */
export class RiskEvents {
  private readonly subscribers: Subscriber[] = [];
  private seq = 0;

  subscribe(fn: Subscriber): () => void {
    this.subscribers.push(fn);
    return () => {
      const i = this.subscribers.indexOf(fn);
      if (i >= 0) this.subscribers.splice(i, 1);
    };
  }

  /** Raise an event; subscriber errors are contained (an event must never fail a decision). */
  publish(event: RiskEvent): void {
    if (this.subscribers.length === 0) return;
    this.seq += 1;
    const stamped = { ...event, id: `${process.pid.toString(36)}-${Date.now().toString(36)}-${this.seq}`, ts: new Date().toISOString() } as RiskEventWithTime;
    for (const fn of this.subscribers) {
      try {
        fn(stamped);
      } catch {
        /* a subscriber's bug is its own */
      }
    }
  }
}
