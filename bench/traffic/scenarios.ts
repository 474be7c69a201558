// The built-in scenario suite: each mixes the human population with one or more campaigns over
// hours of simulated time (low-and-slow needs hours to mean anything). `npm run scorecard` runs
// all of them; `npm run simulate -- --scenario NAME` writes one as a traffic file.
//
// Sized so the whole suite replays (Verdict + baseline) in well under two minutes on 2 cores.

import type { TrafficLine } from './format.ts';
import { runCampaign, type CampaignSpec } from './campaigns/index.ts';
import { DEFAULT_MIX, generateHumans, type HumanMix } from './humans.ts';
import { GenContext, makeEnv, timeOrder, type ShopSetup } from './simulator.ts';

export interface Scenario {
  name: string;
  description: string;
  hours: number;
  shop: ShopSetup;
  humans: HumanMix;
  campaigns: CampaignSpec[];
}

export const DEFAULT_SEED = 1;
const SHOP: ShopSetup = { seed: 42, users: 5000, promoInventory: 1000 };

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'enumeration',
    description: 'phone-number enumeration on register from rented servers, and on password-reset + SMS from rotating proxies (≥35% single-request IPs)',
    hours: 4,
    shop: SHOP,
    humans: DEFAULT_MIX,
    campaigns: [
      { id: 'enum-register-idc', kind: 'enumeration', params: { startH: 0.5, durationH: 3, endpoints: ['register'], requests: 3000, fromOffset: 0, step: 1, pool: { kind: 'idc', size: 8 }, tools: ['python-requests', 'go'] } },
      { id: 'enum-reset-sms-proxies', kind: 'enumeration', params: { startH: 1, durationH: 3, endpoints: ['password-reset', 'sms'], requests: 3000, fromOffset: 50_000, step: 1, pool: { kind: 'proxies', size: 150, singleShare: 0.4 }, tools: ['spoofed-browser', 'shuffled', 'axios'] } },
    ],
  },
  {
    name: 'stuffing',
    description: 'credential stuffing fast / distributed / low-and-slow (one attempt per 3–4 min per IP for 5 h) / on the old /api/v1/login, and password spraying',
    hours: 5,
    shop: SHOP,
    humans: DEFAULT_MIX,
    campaigns: [
      { id: 'stuffing-fast', kind: 'credential-stuffing', params: { startH: 0.5, durationH: 0.25, endpoint: '/api/auth/login', attempts: 1500, pacing: { kind: 'rate' }, pool: { kind: 'idc', size: 3 }, tools: ['python-requests'], existingShare: 0.3, validShare: 0.03 } },
      { id: 'stuffing-distributed', kind: 'credential-stuffing', params: { startH: 1, durationH: 2, endpoint: '/api/auth/login', attempts: 2000, pacing: { kind: 'rate' }, pool: { kind: 'proxies', size: 200, singleShare: 0.3 }, tools: ['spoofed-browser', 'shuffled'], existingShare: 0.3, validShare: 0.03 } },
      { id: 'stuffing-low-slow', kind: 'credential-stuffing', params: { startH: 0, durationH: 5, endpoint: '/api/auth/login', attempts: 2500, pacing: { kind: 'per-ip', minS: 180, maxS: 240 }, pool: { kind: 'residential', size: 30 }, tools: ['spoofed-browser', 'axios'], existingShare: 0.4, validShare: 0.03 } },
      { id: 'stuffing-legacy-v1', kind: 'credential-stuffing', params: { startH: 2, durationH: 1, endpoint: '/api/v1/login', attempts: 1200, pacing: { kind: 'rate' }, pool: { kind: 'proxies', size: 60, singleShare: 0.1 }, tools: ['go', 'java'], existingShare: 0.3, validShare: 0.03 } },
      { id: 'spraying-123456', kind: 'password-spraying', params: { startH: 0.5, durationH: 4, password: '123456', accounts: 1500, pool: { kind: 'residential', size: 40 }, tools: ['python-requests', 'axios'], endpoint: '/api/auth/login' } },
    ],
  },
  {
    name: 'enum-then-stuff',
    description: 'an enumeration of a slice of the phone block, then stuffing only the accounts it found to exist',
    hours: 4,
    shop: SHOP,
    humans: DEFAULT_MIX,
    campaigns: [
      { id: 'enum-precursor', kind: 'enumeration', params: { startH: 0, durationH: 1.5, endpoints: ['password-reset'], requests: 3000, fromOffset: 20_000, step: 1, pool: { kind: 'proxies', size: 120, singleShare: 0.35 }, tools: ['shuffled', 'spoofed-browser'] } },
      { id: 'stuffing-known-accounts', kind: 'credential-stuffing', params: { startH: 1.5, durationH: 2.5, endpoint: '/api/auth/login', attempts: 1500, pacing: { kind: 'rate' }, pool: { kind: 'proxies', size: 100, singleShare: 0.3 }, tools: ['spoofed-browser', 'shuffled'], existingShare: 1, validShare: 0.05, knownRange: { fromOffset: 20_000, count: 3000 } } },
    ],
  },
  {
    name: 'traversal-probing',
    description: 'BOLA walks of orders (sequential) and profiles (random ids) with one valid token, unauthenticated protected calls, internal/sensitive probing, machine-regular scraping',
    hours: 3,
    shop: SHOP,
    humans: DEFAULT_MIX,
    campaigns: [
      { id: 'bola-orders-sequential', kind: 'data-traversal', params: { startH: 0.5, durationH: 1, target: 'orders', order: 'sequential', requests: 1500, pool: { kind: 'idc', size: 1 }, tools: ['python-requests'], account: 1 } },
      { id: 'bola-profiles-random', kind: 'data-traversal', params: { startH: 1, durationH: 1.5, target: 'profiles', order: 'random', requests: 1200, pool: { kind: 'proxies', size: 40, singleShare: 0.2 }, tools: ['go', 'spoofed-browser'], account: 2 } },
      { id: 'unauth-protected', kind: 'unauthenticated', params: { startH: 0, durationH: 3, requests: 400, pool: { kind: 'residential', size: 6 }, tools: ['curl', 'python-requests', 'spoofed-browser'] } },
      { id: 'probe-sensitive', kind: 'probing', params: { startH: 2, durationH: 0.3, requests: 500, pool: { kind: 'idc', size: 2 } } },
      { id: 'scrape-listings', kind: 'scraping', params: { startH: 0, durationH: 3, intervalS: 3, jitterMs: 5, pool: { kind: 'idc', size: 3 }, paths: ['/api/promo/info', '/', '/promo'] } },
    ],
  },
  {
    name: 'harvest',
    description: 'data harvesting (issue 17): one valid token each, a person\'s pace, real browser headers, rotating exits — other users\' profiles, their orders, the winners list paged 50 at a time — among people who see their own data and the public winners list',
    hours: 3,
    shop: SHOP,
    humans: DEFAULT_MIX,
    campaigns: [
      { id: 'harvest-profiles', kind: 'harvest', client: 'headless', params: { startH: 0.3, durationH: 2, target: 'profiles', requests: 400, pageSize: 20, pool: { kind: 'proxies', size: 80, singleShare: 0.6 }, tools: [], disguise: { headers: 'browser', precursors: 'complete' }, pacing: { kind: 'rate' }, account: 11 } },
      { id: 'harvest-orders', kind: 'harvest', client: 'script', params: { startH: 0.5, durationH: 2, target: 'orders', requests: 300, pageSize: 20, pool: { kind: 'residential', size: 30 }, tools: [], disguise: { headers: 'browser', precursors: 'partial' }, pacing: { kind: 'rate' }, account: 12 } },
      { id: 'harvest-winners', kind: 'harvest', client: 'headless', params: { startH: 1, durationH: 1.5, target: 'winners', requests: 60, pageSize: 50, pool: { kind: 'proxies', size: 40, singleShare: 0.8 }, tools: [], disguise: { headers: 'browser', precursors: 'none' }, pacing: { kind: 'rate' }, account: 13 } },
    ],
  },
  {
    name: 'promo-rush',
    description: 'a 1,000-coupon promo: scripted API bots and browser-like bots (some loading the page precursors) farm fresh accounts while real participants claim once',
    hours: 3,
    shop: SHOP,
    humans: { ...DEFAULT_MIX, promoShare: 0.6, promoStartH: 0.5 },
    campaigns: [
      { id: 'promo-bots-scripted', kind: 'promo-bots', params: { startH: 0.5, durationH: 2.5, style: 'scripted', accounts: 400, intervalS: 2, workers: 4, accountsPerDevice: 5, precursorShare: 0.2, headlessShare: 0, pool: { kind: 'proxies', size: 60, singleShare: 0.2 }, tools: ['java', 'python-requests', 'go'], phoneBase: 0 } },
      { id: 'promo-bots-browserlike', kind: 'promo-bots', params: { startH: 0.5, durationH: 2.5, style: 'browserlike', accounts: 500, intervalS: 3, workers: 5, accountsPerDevice: 1, precursorShare: 0.6, headlessShare: 0.3, pool: { kind: 'proxies', size: 100, singleShare: 0.5 }, tools: [], phoneBase: 100_000 } },
    ],
  },
  // Worlds where challenges matter: campaigns that pay for them, and people who meet them.
  {
    name: 'solver-crews',
    description: 'campaigns that pass challenges: a headless-browser stuffing crew on rotating residential exits (new exit every attempt, new profile every 10) and one on sticky exits, paying CPU; a script crew that takes the no-JS fallback (waits, no work); promo bots with the reference solver built in',
    hours: 4,
    shop: SHOP,
    humans: { ...DEFAULT_MIX, promoShare: 0.5, promoStartH: 0.5, appSolverShare: 0.5 },
    campaigns: [
      { id: 'stuffing-headless-rotating', kind: 'credential-stuffing', client: 'headless', params: { startH: 0.5, durationH: 3, endpoint: '/api/auth/login', attempts: 1500, pacing: { kind: 'rate' }, pool: { kind: 'proxies', size: 400, singleShare: 0.6 }, tools: [], existingShare: 0.3, validShare: 0.03, crew: { workers: 12, exitEvery: 1, profileEvery: 10, headlessShare: 0 } } },
      { id: 'stuffing-headless-sticky', kind: 'credential-stuffing', client: 'headless', params: { startH: 0.5, durationH: 3, endpoint: '/api/auth/login', attempts: 1200, pacing: { kind: 'rate' }, pool: { kind: 'residential', size: 6 }, tools: [], existingShare: 0.3, validShare: 0.03, crew: { workers: 6, exitEvery: 0, profileEvery: 0, headlessShare: 0.5 } } },
      { id: 'stuffing-nojs-waiters', kind: 'credential-stuffing', client: 'script-nojs', params: { startH: 0.5, durationH: 3, endpoint: '/api/auth/login', attempts: 1500, pacing: { kind: 'rate' }, pool: { kind: 'proxies', size: 200, singleShare: 0.3 }, tools: ['spoofed-browser'], existingShare: 0.3, validShare: 0.03, fixedUa: true } },
      { id: 'promo-bots-solver', kind: 'promo-bots', client: 'solver', params: { startH: 0.5, durationH: 3, style: 'scripted', accounts: 400, intervalS: 3, workers: 4, accountsPerDevice: 1, precursorShare: 0.5, headlessShare: 0, pool: { kind: 'proxies', size: 100, singleShare: 0.5 }, tools: ['python-requests', 'axios'], phoneBase: 200_000, fixedUa: true } },
    ],
  },
  {
    name: 'carrier-nat',
    description: 'app-heavy humans behind four carrier-NAT addresses (60% of app builds ship the solver; 15% of phones change address after logging in), and stuffing from mobile proxies exiting at the same addresses: one crew of plain scripts, one with the reference solver',
    hours: 3,
    shop: SHOP,
    humans: { ...DEFAULT_MIX, browserSessions: 250, officeUsers: 100, appSessions: 700, cgnatUsers: 900, cgnatIps: 4, appSolverShare: 0.6, cgnatSwitchShare: 0.15, sharedCarrierNat: true },
    campaigns: [
      { id: 'stuffing-mobile-proxies', kind: 'credential-stuffing', client: 'script', params: { startH: 0.5, durationH: 2, endpoint: '/api/auth/login', attempts: 1500, pacing: { kind: 'rate' }, pool: { kind: 'carrier', size: 4 }, tools: ['java', 'python-requests'], existingShare: 0.3, validShare: 0.03 } },
      { id: 'stuffing-mobile-solver', kind: 'credential-stuffing', client: 'solver', params: { startH: 0.5, durationH: 2, endpoint: '/api/auth/login', attempts: 1500, pacing: { kind: 'rate' }, pool: { kind: 'carrier', size: 4 }, tools: ['java'], existingShare: 0.3, validShare: 0.03, fixedUa: true } },
    ],
  },
];

export function scenarioByName(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}

/** The scenario's labelled traffic, in time order. Same scenario + seed → same lines. */
export function generateScenario(s: Scenario, seed: number = DEFAULT_SEED): TrafficLine[] {
  const env = makeEnv({ seed, hours: s.hours, shop: s.shop });
  const out: TrafficLine[] = [];
  generateHumans(new GenContext(env, `${s.name}/humans`, 'human:anonymous', out), s.humans);
  for (const c of s.campaigns) runCampaign(new GenContext(env, `${s.name}/${c.id}`, `attack:${c.id}`, out, c.client ?? 'script'), c);
  return timeOrder(out);
}
