// The fault matrix: one entry per row of bench/results/reliability.md. Each fault is injected
// mid-run under steady load and says when it began, when the failed part could answer again
// ("back"), and how long it was down.
import type { NginxHandle } from '../../scripts/lib/nginx.ts';
import type { RedisServer } from '../../scripts/lib/redis-server.ts';
import type { RestartableService } from './stack.ts';

export interface FaultContext {
  /** ms since the load's first slot */
  clock(): number;
  /** a performance.now() value on that clock */
  fromPerf(perfMs: number): number;
  sleepUntil(clockMs: number): Promise<void>;
  service: RestartableService;
  gateway: NginxHandle;
  redis: (RedisServer & { pinAgain(): void }) | null;
}

export interface FaultTimes {
  /** when the fault was injected (clock ms) */
  faultAt: number;
  /** when the failed part could answer again: process listening, SIGCONT, Redis up; for a
   *  reload (nothing goes down) the moment of the reload */
  backAt: number;
  /** how long the failed part was unable to answer (ms); null when nothing went down */
  outageMs: number | null;
  /** what happened, in words, with the measured steps */
  detail: string;
}

export interface Fault {
  id: string;
  title: string;
  /** one sentence for the results: what is done */
  what: string;
  /** the service runs with VERDICT_REDIS_URL and a local Redis */
  redis?: boolean;
  /** 'bench': run at the bench's load (25% of the plain proxy's saturation, measured first)
   *  instead of the matrix's moderate rate */
  load?: 'bench';
  /** injects the fault and resolves when the failed part is back; null = no fault (healthy) */
  run(ctx: FaultContext): Promise<FaultTimes | null>;
}

/** How long SIGKILL leaves the service dead and Redis stays killed before each starts again. */
export const DOWN_MS = 2000;
/** How long SIGSTOP black-holes the service. */
export const STOP_MS = 5000;

const s = (ms: number) => (ms / 1000).toFixed(2);

export const FAULTS: readonly Fault[] = [
  {
    id: 'healthy',
    title: 'healthy (no fault)',
    what: 'steady load, nothing injected: the decided share a healthy service gives at this rate',
    run: async () => null,
  },
  {
    id: 'healthy-bench',
    title: 'healthy, at the bench\'s load',
    what: 'steady load at the rate of `npm run bench`\'s lowest constant-rate point (25% of the plain nginx proxy\'s saturation, measured at the start of this run), nothing injected',
    load: 'bench',
    run: async () => null,
  },
  {
    id: 'sigkill',
    title: 'service SIGKILL, started again 2 s later',
    what: `SIGKILL to the decision service, a new process started ${DOWN_MS / 1000} s later on the same ports (cold, not warmed up); back = it prints that it listens`,
    async run(ctx) {
      const faultAt = ctx.clock();
      ctx.service.signal('SIGKILL');
      const exitAt = ctx.fromPerf(await ctx.service.exited());
      await ctx.sleepUntil(faultAt + DOWN_MS);
      const spawnAt = ctx.clock();
      const backAt = ctx.fromPerf(await ctx.service.start());
      return { faultAt, backAt, outageMs: backAt - faultAt, detail: `gone after ${s(exitAt - faultAt)} s; new process spawned at +${s(spawnAt - faultAt)} s, listening ${s(backAt - spawnAt)} s later` };
    },
  },
  {
    id: 'sigstop',
    title: 'service SIGSTOP 5 s',
    what: `SIGSTOP to the decision service (the kernel still accepts connections; nothing answers), SIGCONT ${STOP_MS / 1000} s later; back = SIGCONT`,
    async run(ctx) {
      const faultAt = ctx.clock();
      ctx.service.signal('SIGSTOP');
      await ctx.sleepUntil(faultAt + STOP_MS);
      ctx.service.signal('SIGCONT');
      const backAt = ctx.clock();
      return { faultAt, backAt, outageMs: backAt - faultAt, detail: `stopped for ${s(backAt - faultAt)} s` };
    },
  },
  {
    id: 'restart',
    title: 'service restart (SIGTERM, then start)',
    what: 'graceful restart: SIGTERM to the decision service, a new process started on the same ports as soon as the old one has exited (cold, not warmed up); back = it prints that it listens',
    async run(ctx) {
      const faultAt = ctx.clock();
      ctx.service.signal('SIGTERM');
      const exitAt = ctx.fromPerf(await ctx.service.exited());
      const backAt = ctx.fromPerf(await ctx.service.start());
      return { faultAt, backAt, outageMs: backAt - faultAt, detail: `old process exited after ${s(exitAt - faultAt)} s; new one listening ${s(backAt - exitAt)} s later` };
    },
  },
  {
    id: 'reload',
    title: 'nginx reload',
    what: 'SIGHUP to the gateway nginx master (what `nginx -s reload` sends): new workers start with empty connection pools, old ones finish their requests; back = the reload signal (nothing goes down)',
    async run(ctx) {
      const faultAt = ctx.clock();
      await ctx.gateway.reload();
      const doneAt = ctx.clock();
      return { faultAt, backAt: faultAt, outageMs: null, detail: `new worker serving after ${s(doneAt - faultAt)} s` };
    },
  },
  {
    id: 'redis',
    title: 'Redis SIGKILL, started again 2 s later',
    what: `the service shares state through Redis (VERDICT_REDIS_URL); SIGKILL to Redis, started again empty ${DOWN_MS / 1000} s later; back = Redis accepts connections`,
    redis: true,
    async run(ctx) {
      const redis = ctx.redis;
      if (!redis) throw new Error('the redis fault needs a Redis');
      const faultAt = ctx.clock();
      await redis.kill();
      await ctx.sleepUntil(faultAt + DOWN_MS);
      await redis.start();
      redis.pinAgain();
      const backAt = ctx.clock();
      return { faultAt, backAt, outageMs: backAt - faultAt, detail: `Redis down for ${s(backAt - faultAt)} s (the service itself stays up)` };
    },
  },
];
