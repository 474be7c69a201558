// Request features computed once per decision. Raw identifiers are reduced here to a keyed hash
// and numeric features and go no further.

import { createHash, createHmac } from 'node:crypto';
import { matchRoute, type CompiledPolicy } from '../config/policy.ts';
import { subnetOf } from '../net/ip.ts';
import type { DecideRequest } from '../wire/schema.ts';
import type { RequestFeatures } from './signal.ts';

const PHONE = /^\+?\d{6,15}$/;

export function hashIdentifier(key: Buffer, identifier: string): string {
  return createHmac('sha256', key).update(identifier.trim().toLowerCase()).digest('base64').slice(0, 22);
}

export function fingerprintOf(req: DecideRequest): string {
  const h = createHash('sha1');
  h.update(req.header_names.join(','));
  h.update('|');
  h.update(req.accept_language ? 'L' : '-');
  h.update(req.accept_encoding);
  return h.digest('base64').slice(0, 16);
}

export function extractFeatures(req: DecideRequest, policy: CompiledPolicy, now: number, identifierKey: Buffer): RequestFeatures {
  const route = matchRoute(policy, req.method, req.path, req.route_tag);
  const id = req.identifier;
  const digits = id && PHONE.test(id) ? id.replace('+', '') : '';
  return {
    req,
    now,
    route,
    routeClass: route.class,
    ip: req.client_ip,
    subnet: subnetOf(req.client_ip),
    hasCredentials: req.has_authorization || req.token_hash !== undefined || req.session_hash !== undefined,
    isInternalIp: policy.internal.has(req.client_ip),
    identifierHash: id ? hashIdentifier(identifierKey, id) : '',
    phoneNumber: digits ? Number(digits) : -1,
    fingerprint: fingerprintOf(req),
  };
}
