// An office crowd through the real stack (issue 14, "Done when"): the real demo shop, the real
// decision service with policies/default.yaml, real nginx with the Lua gateway in the demo layout
// (defaultLocations(), verdict-server.conf, a gateway secret: what `npm run demo` runs), and one
// real Chromium (Debian's, driven by playwright-core) in which 40 customers, each in a browser
// context of their own, all from 127.0.0.1 (an office NAT, one browser build), do the demo's flow
// within a couple of minutes: open the home page, log in with their own password (a quarter
// mistype it once first), open the promo page, claim the coupon. They click and type in the
// shop's own pages with human pauses, arriving a few at a time.
//
// Verdict may challenge them but must not stop them: no block at any step, and every challenge
// answered — a challenge page by the browser itself, an API call's 429 descriptor by the page
// with the reference solver (gateway-plugin/challenge/solver.js), as a front-end that embeds it
// would (the demo shop's does not: those calls are counted apart). Why a customer was stopped
// comes from a tap between the gateway and the service (test/helpers/crowd.ts): each customer's
// story, the decisions behind every Verdict answer, and the totals are printed as comments.
// A decide call the service answers after the gateway's budget lets the request through
// undecided (fail-open); a late BLOCK still counts as the engine blocking a customer, and a run
// where the engine judged too few calls fails rather than passing on nothing.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startShop } from '../../scripts/demo-shop/app.ts';
import { defaultLocations, repoRoot, startNginx } from '../../scripts/lib/nginx.ts';
import { sleep, sumSeries } from '../helpers/http.ts';
import { startService } from '../helpers/service.ts';
import { crowd, decisionFor, startDecideTap, verdictAnswer, type Customer, type Decided, type VerdictAnswer } from '../helpers/crowd.ts';

const BROWSER = '/usr/bin/chromium';
const CUSTOMERS = 40;
const SEED = 14;
/** mean gap between two arrivals: 40 customers arrive over about 90 s, a few in the shop at once */
const MEAN_GAP_MS = 2200;
/** the crowd's own deadline; customers still in the shop then are reported as not finished */
const RUN_DEADLINE_MS = 270_000;
/** longest wait for one page or one answer */
const STEP_TIMEOUT_MS = 20_000;
/** longest visit; a customer still in the shop then is taken out (their context closed) */
const VISIT_TIMEOUT_MS = 120_000;
/** below this share of the customers' guarded API calls judged by the engine, the run measured too little */
const MIN_JUDGED = 0.8;

// tap's per-file timeout (package.json: 120 s) is too short for setup + the crowd + the report
t.setTimeout(RUN_DEADLINE_MS + 90_000);

const SOLVER = readFileSync(join(repoRoot, 'gateway-plugin/challenge/solver.js'), 'utf8');

type StepName = 'home' | 'login' | 'promo' | 'claim';

/** One response of the site to a customer's browser (static assets left out). */
interface Seen {
  step: StepName;
  method: string;
  path: string;
  /** request start and response, wall clock */
  from: number;
  to: number;
  status: number;
  navigation: boolean;
  body: string;
  answer: VerdictAnswer | undefined;
  /** resolved once the body is read and classified */
  ready: Promise<void>;
}

interface Stop {
  step: StepName;
  how: 'blocked' | 'challenge page not solved' | 'challenged API call not answered';
  seen: Seen;
}

interface Visit {
  c: Customer;
  step: StepName;
  /** what the customer is doing now: where a stalled visit stalled */
  doing: string;
  started: number;
  ms: number;
  log: string[];
  seen: Seen[];
  pageChallenges: number;
  pageSolves: number;
  apiChallenges: number;
  apiAnswered: number;
  stop: Stop | undefined;
  error: string | undefined;
  coupon: string | undefined;
}

class Stopped extends Error {
  constructor(readonly stop: Stop) { super(`${stop.how} at ${stop.step}`); }
}

t.test(`${CUSTOMERS} customers behind one office address: home, login (a quarter with a typo), promo, claim`, {
  skip: existsSync(BROWSER) ? false : `${BROWSER} is missing (the test command installs it: scripts/ensure-deps.mjs --chromium)`,
}, async (t) => {
  // The server side (service, nginx, shop, the tap) gets the CPU first, inherited from this
  // thread: on a busy 2-core box a starved service answers after the gateway's 25 ms budget and
  // the request passes undecided (fail-open), which hides what the engine would have done.
  let priority = 'server side at normal priority (raising it was not permitted)';
  try { setPriority(-10); priority = 'server side at nice -10'; } catch { /* not root */ }

  // ---- the stack, as `npm run demo` runs it ----
  const dir = mkdtempSync(join(tmpdir(), 'verdict-crowd-'));
  const secretFile = join(dir, 'gateway.secret');
  writeFileSync(secretFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  // Each part is stopped by its own teardown (they run in reverse order), so a part that fails
  // to start leaves none running.
  const shop = await startShop({ port: 0, host: '127.0.0.1' });
  t.teardown(() => shop.close());
  const service = await startService({
    env: { VERDICT_IDENTIFIER_KEY: randomBytes(24).toString('base64'), VERDICT_GATEWAY_SECRET_FILE: secretFile },
  });
  t.teardown(() => service.stop());
  const tap = await startDecideTap(service.addr);
  t.teardown(() => tap.stop());
  const nginx = await startNginx({
    upstream: new URL(shop.url).host,
    service: tap.addr,
    workers: 2,
    init: { secret_file: secretFile },
    // the demo's locations with a 500 ms budget instead of 25 ms: this test is about the engine's
    // verdicts, and on a loaded 2-core CI box a 25 ms budget measures the machine (a starved
    // service's late answers pass undecided) rather than the engine
    locations: defaultLocations().replace(/set \$verdict_budget_ms \d+;/g, 'set $verdict_budget_ms 500;'),
  });
  t.teardown(() => nginx.stop());
  // The customers' browsers run on their own machines, not on the server: here they share its
  // CPU, so Chromium runs niced below the server side and cannot starve the service or nginx.
  const niced = join(dir, 'chromium');
  writeFileSync(niced, `#!/bin/sh\nexec nice -n 19 ${BROWSER} "$@"\n`, { mode: 0o755 });
  // Renderers capped and no site-isolation trials: 40 contexts otherwise start 40+ renderer
  // processes whose start-up alone saturated a 2-core CI box (visits of ~10 s took 90 s and
  // customers were cut off as "not done"); with these flags the slowest visit took ~58 s.
  const browser: Browser = await chromium.launch({
    executablePath: niced,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--renderer-process-limit=3', '--disable-site-isolation-trials', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(() => browser.close().catch(() => {}));
  const base = nginx.url;

  // The User-Agent this build sends with a window: a person's browser does not say
  // "HeadlessChrome", and a UA that does is a declared tool (features.ts), not a customer.
  const probe = await browser.newContext();
  const headlessUa = await (await probe.newPage()).evaluate(() => navigator.userAgent);
  await probe.close();
  const userAgent = headlessUa.replace('HeadlessChrome/', 'Chrome/');
  t.comment(`Chromium ${browser.version()}, User-Agent: ${userAgent}; ${priority}`);

  const customers = crowd(CUSTOMERS, SEED, MEAN_GAP_MS);
  t.comment(`${customers.length} customers (seed ${SEED}), ${customers.filter((c) => c.typo).length} mistype their password once, ` +
    `${customers.filter((c) => c.login === c.user.phone).length} log in with their phone; arrivals over ` +
    `${(customers.at(-1)!.arriveMs / 1000).toFixed(0)} s`);

  // ---- the crowd ----
  const open = new Set<BrowserContext>();
  let deadlinePassed = false;
  const crowdStarted = Date.now();
  const deadline = setTimeout(() => {
    deadlinePassed = true;
    for (const ctx of open) void ctx.close().catch(() => {});
  }, RUN_DEADLINE_MS);

  const visits = await Promise.all(customers.map(async (c): Promise<Visit> => {
    const v: Visit = {
      c, step: 'home', doing: 'arriving', started: 0, ms: 0, log: [], seen: [], pageChallenges: 0, pageSolves: 0, apiChallenges: 0,
      apiAnswered: 0, stop: undefined, error: undefined, coupon: undefined,
    };
    await sleep(c.arriveMs);
    if (deadlinePassed) { v.error = 'never arrived: the crowd deadline had passed'; return v; }
    v.started = Date.now();
    const ctx = await browser.newContext({ userAgent });
    open.add(ctx);
    let stalled = false;
    const watchdog = setTimeout(() => { stalled = true; void ctx.close().catch(() => {}); }, VISIT_TIMEOUT_MS);
    try {
      const page = await ctx.newPage();
      watch(page, base, v);
      await visit(page, base, c, v);
    } catch (err) {
      if (err instanceof Stopped) v.stop = err.stop;
      else if (stalled) v.error = `still in the shop after ${VISIT_TIMEOUT_MS / 1000} s, stalled at ${v.step}: ${v.doing}`;
      else if (deadlinePassed) v.error = `not done by the crowd deadline (${RUN_DEADLINE_MS / 1000} s), at ${v.step}: ${v.doing}`;
      else v.error = `${v.step}, ${v.doing}: ${(err as Error).message.split('\n')[0]}`;
    } finally {
      clearTimeout(watchdog);
      v.ms = Date.now() - v.started;
      open.delete(ctx);
      await ctx.close().catch(() => {});
    }
    return v;
  }));
  clearTimeout(deadline);
  const crowdMs = Date.now() - crowdStarted;
  await sleep(2500); // the gateway's outcome reports (flushed every second) reach the tap

  // ---- what happened, per customer and in total ----
  await Promise.all(visits.flatMap((v) => v.seen.map((s) => s.ready)));
  for (const v of visits) {
    v.pageChallenges = v.seen.filter((s) => s.navigation && s.answer?.kind === 'challenge-page').length;
    // the challenge page trades its proof with a fetch of /.verdict/answer, then goes back
    v.pageSolves = v.seen.filter((s) => s.path === '/.verdict/answer' && s.status === 200).length;
  }
  const verdicts = tap.verdicts();
  const outcomes = tap.outcomes();
  const decided = (s: Seen, v: Visit): Decided => decisionFor(
    { method: s.method, path: s.path, from: s.from, to: s.to, identifier: s.path === '/api/auth/login' ? v.c.login : undefined },
    verdicts, outcomes);
  const guarded = (s: Seen) => s.path.startsWith('/api/');
  let guardedCalls = 0;
  let undecidedCalls = 0;
  let unjudgedCalls = 0;
  /** customers Verdict did not stop only because the engine's BLOCK came after the gateway's budget */
  const lateBlocked: string[] = [];
  const stopLine = (v: Visit): string => {
    const s = v.stop!;
    const again = s.how === 'challenged API call not answered' ? ', sent again with a valid proof' : '';
    return `#${v.c.n} ${v.c.user.username}: ${s.step} ${s.how} (${s.seen.status} ${s.seen.method} ${s.seen.path}${again}: ${decided(s.seen, v).text})`;
  };

  for (const v of visits) {
    const c = v.c;
    const who = `#${String(c.n).padStart(2, '0')} ${c.user.username}${c.login === c.user.phone ? ' (phone)' : ''}${c.typo ? ' (typo)' : ''}`;
    const end = v.stop ? `STOPPED at ${v.stop.step}: ${v.stop.how}` : v.error ? `NOT DONE: ${v.error}` : `claimed ${v.coupon}`;
    const challenges = v.pageChallenges + v.apiChallenges > 0
      ? ` | challenge pages ${v.pageChallenges} shown / ${v.pageSolves} solved, API challenges ${v.apiChallenges} / ${v.apiAnswered} answered` : '';
    t.comment(`${who}, ${(v.ms / 1000).toFixed(1)} s: ${v.log.join(' · ')} → ${end}${challenges}`);
    for (const s of v.seen) {
      const d = guarded(s) || s.answer ? decided(s, v) : undefined;
      if (guarded(s)) {
        guardedCalls++;
        if (d?.undecided) undecidedCalls++;
        if (!d?.judged) unjudgedCalls++;
      }
      if (s.answer || d?.undecided) t.comment(`    ${s.step}: ${s.method} ${s.path} ${s.status}${s.answer ? ` (${s.answer.kind})` : ''}: ${d!.text}`);
      if (d?.late === 'BLOCK' && !v.stop && !lateBlocked.some((l) => l.startsWith(`#${c.n} `))) {
        lateBlocked.push(`#${c.n} ${c.user.username}: ${s.step} ${s.method} ${s.path}: ${d.text}`);
      }
    }
  }

  const stopped = visits.filter((v) => v.stop);
  const notDone = visits.filter((v) => v.error);
  const tally = (keys: string[]) => {
    const m = new Map<string, number>();
    for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
    return [...m].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n} ${k}`).join(', ') || 'none';
  };
  const sum = (f: (v: Visit) => number) => visits.reduce((s, v) => s + f(v), 0);
  const gateway = await (await fetch(nginx.metricsUrl)).text();
  t.comment(`crowd done in ${(crowdMs / 1000).toFixed(0)} s: ${visits.length - stopped.length - notDone.length} of ${visits.length} claimed, ` +
    `${stopped.length} stopped (${tally(stopped.map((v) => `${v.stop!.step} ${v.stop!.how}`))}), ${notDone.length} not done`);
  t.comment(`challenge pages: ${sum((v) => v.pageChallenges)} shown, ${sum((v) => v.pageSolves)} solved; challenged API calls: ` +
    `${sum((v) => v.apiChallenges)}, ${sum((v) => v.apiAnswered)} answered with the reference solver ` +
    '(the demo shop\'s own front-end has none: there those customers would be stuck)');
  t.comment(`service decisions: ${tally(verdicts.map((x) => `${x.via} ${x.action || `HTTP ${x.serviceStatus}`}`))}; ` +
    `gateway cache: ${sumSeries(gateway, 'verdict_gateway_decisions_total', 'source="cache"')} verdicts enforced from it`);
  t.comment(`reasons in BLOCK / CHALLENGE decisions: ${tally(verdicts.filter((x) => x.action === 'BLOCK' || x.action === 'CHALLENGE')
    .flatMap((x) => x.reasons.map((r) => `${x.action} ${r}`)))}`);
  t.comment(`customers' guarded API calls: ${guardedCalls}, passed undecided (fail-open) ${undecidedCalls}, of which ` +
    `${undecidedCalls - unjudgedCalls} the engine judged too late and ${unjudgedCalls} it never judged; ${lateBlocked.length} customers ` +
    `passed only because the engine's BLOCK came after the gateway's budget; gateway fail-open: ` +
    `${tally(gateway.split('\n').filter((l) => l.startsWith('verdict_gateway_fail_open_total{')).flatMap((l) => {
      const n = Number(l.slice(l.lastIndexOf(' ') + 1));
      return Array<string>(n).fill(/cause="([^"]*)"/.exec(l)?.[1] ?? '?');
    }))}; tap errors: ${tap.errors().length}`);

  const blocked = stopped.filter((v) => v.stop!.how === 'blocked');
  const stuck = stopped.filter((v) => v.stop!.how !== 'blocked');
  // A BLOCK that came after the gateway stopped waiting is still the engine blocking a customer.
  t.equal(blocked.length + lateBlocked.length, 0, `no customer blocked by Verdict at any step (${blocked.length} of ${visits.length} were: ` +
    `${tally(blocked.map((v) => v.stop!.step))}; ${lateBlocked.length} more passed only because the engine's BLOCK came too late)`,
  { blocked: blocked.map(stopLine), blockedLate: lateBlocked });
  t.equal(stuck.length, 0, `no customer left challenged without a way through (${stuck.length} were)`, { stuck: stuck.map(stopLine) });
  t.equal(notDone.length, 0, `every customer Verdict did not stop finished the flow (${notDone.length} did not, not by Verdict's answer)`,
    { notDone: notDone.map((v) => `#${v.c.n} ${v.c.user.username}: ${v.error} (after: ${v.log.at(-1) ?? 'nothing'})`) });
  t.ok(guardedCalls > 0 && unjudgedCalls <= (1 - MIN_JUDGED) * guardedCalls,
    `the engine judged at least ${MIN_JUDGED * 100}% of the customers' guarded API calls, in time or late ` +
    `(${guardedCalls - unjudgedCalls} of ${guardedCalls}: a starved or absent service proves nothing)`);
  t.ok(crowdMs < RUN_DEADLINE_MS, `the crowd was done within ${RUN_DEADLINE_MS / 1000} s (${(crowdMs / 1000).toFixed(0)} s)`);
});

/** Records every response of the site to the customer's page, classifying Verdict's answers. */
function watch(page: Page, base: string, v: Visit): void {
  page.on('response', (res) => {
    const url = new URL(res.url());
    if (url.origin !== base || url.pathname.startsWith('/static/')) return;
    const req = res.request();
    const status = res.status();
    const type = res.headers()['content-type'] ?? '';
    const to = Date.now();
    const started = req.timing().startTime; // epoch ms; -1 when Chromium did not say
    const seen: Seen = {
      step: v.step, method: req.method(), path: url.pathname, from: started > 0 ? started : to - 1000, to, status,
      navigation: req.isNavigationRequest(), body: '', answer: undefined, ready: Promise.resolve(),
    };
    if (status === 403 || status === 429 || url.pathname.startsWith('/api/')) {
      // a body the page never reads (the shop's claim script ignores its answer) may never finish
      const body = Promise.race([res.text(), new Promise<string>((_, reject) => {
        setTimeout(() => reject(new Error('body not readable')), STEP_TIMEOUT_MS).unref();
      })]);
      seen.ready = body.then((body) => {
        seen.body = body;
        seen.answer = verdictAnswer(status, type, body);
      }, () => {
        // the interstitial's body can be gone once the page has solved it and moved on
        if (status === 429 && type.includes('text/html')) seen.answer = { kind: 'challenge-page', requestId: '' };
      });
    }
    v.seen.push(seen);
  });
}

/** The first response after `mark` that `match`es, read and classified; throws after the step timeout. */
async function answerOf(v: Visit, mark: number, match: (s: Seen) => boolean, what: string): Promise<Seen> {
  const until = Date.now() + STEP_TIMEOUT_MS;
  for (;;) {
    const s = v.seen.slice(mark).find(match);
    if (s) { await s.ready; return s; }
    if (Date.now() > until) throw new Error(`no answer to ${what} within ${STEP_TIMEOUT_MS / 1000} s`);
    await sleep(25);
  }
}

/**
 * Waits until the page shows `selector`: the shop's page, after any challenge page has solved
 * itself. A blocked navigation stops the customer, and so does a challenge page still there at
 * the step timeout.
 */
async function land(page: Page, v: Visit, mark: number, selector: string): Promise<void> {
  const until = Date.now() + STEP_TIMEOUT_MS;
  const counted = new Set<Seen>();
  let challenge: Seen | undefined;
  for (;;) {
    for (const s of v.seen.slice(mark)) {
      if (!s.navigation || counted.has(s)) continue;
      await s.ready;
      counted.add(s);
      if (s.answer?.kind === 'challenge-page') {
        v.log.push(`${v.step} challenge page`);
        challenge = s;
      } else if (s.answer?.kind === 'blocked') {
        throw new Stopped({ step: v.step, how: 'blocked', seen: s });
      }
    }
    if ((await page.locator(selector).count().catch(() => 0)) > 0) {
      await page.waitForLoadState('load', { timeout: STEP_TIMEOUT_MS });
      return;
    }
    if (Date.now() > until) {
      if (challenge) throw new Stopped({ step: v.step, how: 'challenge page not solved', seen: challenge });
      throw new Error(`${v.step}: ${selector} not on the page within ${STEP_TIMEOUT_MS / 1000} s (at ${page.url()})`);
    }
    await sleep(50);
  }
}

interface Replay { method: string; path: string; headers: Record<string, string>; body?: string }

/**
 * The shop's answer to an API call the page made. Verdict's block stops the customer; Verdict's
 * 429 descriptor is answered from the page with the reference solver (one try: the request sent
 * again with X-Verdict-Proof), and what that brings is the answer — unless Verdict's again.
 */
async function shopAnswer(page: Page, v: Visit, s: Seen, replay: () => Promise<Replay>): Promise<{ status: number; body: string }> {
  if (s.answer?.kind === 'blocked') throw new Stopped({ step: v.step, how: 'blocked', seen: s });
  if (s.answer?.kind !== 'api-challenge') return { status: s.status, body: s.body };
  v.apiChallenges++;
  v.log.push(`${v.step} API challenge`);
  const call = await replay();
  const mark = v.seen.length;
  v.doing = `answering the challenge of ${call.path}`;
  const r = await page.evaluate(async ({ solver, c, call }) => {
    const g = globalThis as unknown as { VerdictSolver?: { solveAsync(nonce: string, d: number): Promise<string> } };
    if (!g.VerdictSolver) (0, eval)(solver);
    const proof = await g.VerdictSolver!.solveAsync(c.nonce, c.difficulty);
    const res = await fetch(call.path, { method: call.method, headers: { ...call.headers, 'X-Verdict-Proof': proof }, body: call.body });
    return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
  }, { solver: SOLVER, c: { nonce: s.answer.nonce, difficulty: s.answer.difficulty }, call });
  const again = await answerOf(v, mark, (x) => x.method === call.method && x.path === call.path, `the answered ${call.path}`);
  again.answer = verdictAnswer(r.status, r.type, r.body);
  if (again.answer?.kind === 'blocked') throw new Stopped({ step: v.step, how: 'blocked', seen: again });
  // the request sent again with a valid proof was challenged again (or asked for more): no way through
  if (again.answer) throw new Stopped({ step: v.step, how: 'challenged API call not answered', seen: again });
  v.apiAnswered++;
  v.log.push('answered');
  return { status: r.status, body: r.body };
}

/** One customer's visit: home, login (a typo first for some), promo page, claim. */
async function visit(page: Page, base: string, c: Customer, v: Visit): Promise<void> {
  const think = () => sleep(c.pause(300, 1200));

  // home
  let mark = v.seen.length;
  v.doing = 'opening the home page';
  await page.goto(`${base}/`, { waitUntil: 'commit', timeout: STEP_TIMEOUT_MS });
  await land(page, v, mark, 'form#login');
  v.log.push('home');
  await sleep(c.pause(600, 1500));

  // login
  v.step = 'login';
  const username = page.locator('input[name=username]');
  const password = page.locator('input[name=password]');
  v.doing = 'typing the username';
  await username.click();
  await username.pressSequentially(c.login, { delay: c.keyDelayMs });
  await think();
  await password.click();
  for (const typed of c.typo ? [c.typo, c.user.password] : [c.user.password]) {
    if (typed !== c.typo && c.typo) {
      // nothing happened on the page: they look again, select the password and retype it
      await sleep(c.pause(800, 1600));
      await password.click();
      await page.keyboard.press('Control+A');
    }
    v.doing = 'typing the password';
    await password.pressSequentially(typed, { delay: c.keyDelayMs });
    await think();
    v.doing = 'logging in';
    mark = v.seen.length;
    await page.getByRole('button', { name: 'Log in' }).click();
    const s = await answerOf(v, mark, (x) => x.method === 'POST' && x.path === '/api/auth/login', 'the login');
    const a = await shopAnswer(page, v, s, async () => ({
      method: 'POST', path: '/api/auth/login', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: c.login, password: typed }),
    }));
    if (typed === c.typo) {
      if (a.status !== 401) throw new Error(`login with a typo: the shop answered ${a.status} ${a.body.slice(0, 80)}`);
      v.log.push('login 401 (typo)');
      continue;
    }
    if (a.status !== 200) throw new Error(`login: the shop answered ${a.status} ${a.body.slice(0, 80)}`);
    const token = (JSON.parse(a.body) as { token?: string }).token ?? '';
    // the shop's script keeps the token; after an answered challenge the solver's caller does
    v.doing = 'keeping the token';
    await page.evaluate((tk) => { if (!sessionStorage.getItem('token')) sessionStorage.setItem('token', tk); }, token);
    v.log.push('login 200');
  }
  await sleep(c.pause(500, 1500));

  // promo page (its script asks for /api/promo/info)
  v.step = 'promo';
  v.doing = 'opening the promo page';
  mark = v.seen.length;
  await page.getByRole('link', { name: "Today's promo" }).click();
  await land(page, v, mark, '#claim');
  const info = await answerOf(v, mark, (x) => x.method === 'GET' && x.path === '/api/promo/info', 'the promo info');
  const i = await shopAnswer(page, v, info, async () => ({ method: 'GET', path: '/api/promo/info', headers: {} }));
  if (i.status !== 200) throw new Error(`promo info: the shop answered ${i.status} ${i.body.slice(0, 80)}`);
  v.log.push('promo');
  await sleep(c.pause(800, 2000));

  // claim
  v.step = 'claim';
  v.doing = 'claiming';
  mark = v.seen.length;
  await page.locator('#claim').click();
  const claim = await answerOf(v, mark, (x) => x.method === 'POST' && x.path === '/api/promo/claim', 'the claim');
  const k = await shopAnswer(page, v, claim, async () => ({
    method: 'POST', path: '/api/promo/claim',
    headers: { authorization: `Bearer ${await page.evaluate(() => sessionStorage.getItem('token') ?? '')}` },
  }));
  if (k.status !== 200) throw new Error(`claim: the shop answered ${k.status} ${k.body.slice(0, 80)}`);
  v.coupon = (JSON.parse(k.body) as { coupon?: string }).coupon;
  v.log.push('claim 200');
}
