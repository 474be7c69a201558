// Request features computed once per decision. Raw identifiers are reduced here to a keyed hash
// and numeric features and go no further.

import { createHmac } from 'node:crypto';
import { matchRoute, type CompiledPolicy } from '../config/policy.ts';
import { subnetOf } from '../net/ip.ts';
import { hash32 } from '../state/distinct.ts';
import type { DecideRequest } from '../wire/schema.ts';
import { urlHash } from './settled-urls.ts';
import type { RequestFeatures } from './signal.ts';

const PHONE = /^\+?\d{6,15}$/;
const AUTOMATION_UA =
  /(curl|wget|python-requests|python-urllib|aiohttp|httpx|go-http-client|java\/|apache-httpclient|libwww-perl|node-fetch|axios|undici|got\b|scrapy|headlesschrome|phantomjs|selenium|puppeteer|playwright|postmanruntime|insomnia|httpie|okhttp\/[0-2]\.|^$)/i;
const BROWSER_UA = /mozilla\/5\.0 .*(chrome|firefox|safari|edg)\//i;
const CHROMIUM_UA = /(chrome|edg)\/(\d+)/i;

export function hashIdentifier(key: Buffer, identifier: string): string {
  return createHmac('sha256', key).update(identifier.trim().toLowerCase()).digest('base64').slice(0, 22);
}


/**
 * Client fingerprint: what stays the same across one client's requests (User-Agent, language,
 * encodings, client hints) — not the header list, which changes with each request's kind.
 */
export function fingerprintOf(req: DecideRequest): string {
  return (hash32(`${req.user_agent}|${req.accept_language}|${req.accept_encoding}|${req.sec_ch_ua}`) >>> 0).toString(36);
}

/**
 * Inconsistency between the claimed browser and the headers sent: a Chrome UA without the
 * client hints and fetch metadata every modern Chrome sends, a browser without Accept-Language.
 */
function browserMismatch(req: DecideRequest): boolean {
  if (!BROWSER_UA.test(req.user_agent)) return false;
  const chromium = CHROMIUM_UA.exec(req.user_agent);
  if (chromium && Number(chromium[2]) >= 90 && !req.sec_ch_ua) return true;
  return !req.accept_language && !req.sec_fetch_mode;
}

function objectIdOf(path: string, segment: number): string {
  if (segment < 0) return '';
  let start = 0;
  for (let i = 0; i < segment; i++) {
    start = path.indexOf('/', start) + 1;
    if (start === 0) return '';
  }
  const end = path.indexOf('/', start);
  return end < 0 ? path.slice(start) : path.slice(start, end);
}

/** Hash of the set of header names (sorted): survives header-order shuffling by the same tool. */
export function headerSetOf(req: DecideRequest): string {
  return (hash32([...req.header_names].sort().join(',')) >>> 0).toString(36);
}

/**
 * A server-to-server integration: it authenticates with an API key (the gateway hashes it as the
 * principal when there is no Authorization), or sends an `x-api-key` header next to a token.
 */
function isApiKey(req: DecideRequest): boolean {
  return (req.token_hash !== undefined && !req.has_authorization) || req.header_names.includes('x-api-key');
}

export function extractFeatures(req: DecideRequest, policy: CompiledPolicy, now: number, identifierKey: Buffer): RequestFeatures {
  const route = matchRoute(policy, req.method, req.path, req.route_tag);
  const id = req.identifier;
  const digits = id && PHONE.test(id) ? id.replace('+', '') : '';
  const objectId = objectIdOf(req.path, route.idSegment);
  const fingerprint = fingerprintOf(req);
  return {
    req,
    urlHash: urlHash(req.method, req.path, req.query),
    now,
    route,
    routeClass: route.class,
    method: req.method,
    ip: req.client_ip,
    subnet: subnetOf(req.client_ip),
    hasCredentials: req.has_authorization || req.token_hash !== undefined || req.session_hash !== undefined,
    isInternalIp: policy.internal.has(req.client_ip),
    identifierHash: id ? hashIdentifier(identifierKey, id) : '',
    phoneNumber: digits ? Number(digits) : -1,
    fingerprint,
    client: `${req.client_ip}|${fingerprint}`,
    // Only identity decisions use the header set: skip the sort elsewhere.
    headerSet: route.class === 'identity' ? headerSetOf(req) : '',
    apiKey: isApiKey(req),
    principal: req.token_hash ? req.token_hash.toString('base64') : '',
    device: req.device_hash ? req.device_hash.toString('base64') : '',
    session: req.session_hash ? req.session_hash.toString('base64') : '',
    passwordHash: req.password_hash ? req.password_hash.toString('base64') : '',
    objectId,
    objectNumber: /^\d{1,15}$/.test(objectId) ? Number(objectId) : -1,
    automationClient: AUTOMATION_UA.test(req.user_agent),
    browserMismatch: browserMismatch(req),
  };
}
