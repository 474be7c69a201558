// What a benchmark case is. run.ts loads every file in bench/cases/ and runs them by `order`, so
// adding a case (e.g. the njs gateway) is one new file there.
import type { MixRequest } from './request-mix.ts';
import type { CpuSet, ServiceProcess } from './proc.ts';
import type { BenchResults, Section, TargetCheck } from './results.ts';

export interface Cpus {
  /** nginx (gateway and upstream) */
  server: CpuSet;
  /** the decision service */
  service: CpuSet;
  /** wrk and the orchestrator's own probes */
  load: CpuSet;
}

export interface BenchEnv {
  quick: boolean;
  cpus: Cpus;
  /** nginx worker processes of the proxy cases (the gateway, plain, auth_request; 1 unless --layout spread on 4+ cores) */
  workers: number;
  /** the minimal upstream, "127.0.0.1:port" */
  upstream: string;
  /** the decision service shared by the proxy cases */
  service: ServiceProcess;
  /** scratch directory for scripts and configs */
  tmp: string;
  /** the all-human request mix (same requests for every case) and its wrk script */
  mix: readonly MixRequest[];
  mixScript: string;
  /** the attack mix (2,000 requests replayed fast: bots) and its wrk script */
  attackScript: string;
  durationS: number;
  warmupS: number;
  /** how the Lua gateway reaches the service: the framed transport (default) or HTTP */
  transport: 'frame' | 'http';
  connections: number;
}

/** A running gateway stack in front of the upstream. */
export interface Stack {
  url: string;
  stop(): Promise<void>;
  /** the Lua gateway's counters (Prometheus text), when the stack has them */
  gatewayMetrics?(): Promise<string>;
  /** the gateway's nginx worker pids, when the stack knows them (CPU per request) */
  workerPids?(): number[];
}

/** A case measured at saturation each round, side by side with the plain proxy. */
export interface ProxyCase {
  kind: 'proxy';
  id: string;
  order: number;
  title: string;
  /** also measured at constant rates for the latency-under-load table */
  underLoad?: boolean;
  /** the wrk script to send (default: env.mixScript, the all-human mix) */
  script?(env: BenchEnv): string;
  /** null when runnable; otherwise why not (shown in the results instead of a number) */
  unavailable?(): string | null;
  start(env: BenchEnv): Promise<Stack>;
}

/** What a custom case adds to the results. */
export interface CaseOutput {
  sections: Section[];
  targets: TargetCheck[];
}

/** A case with its own procedure (faults, service alone, memory); runs once after the rounds. */
export interface CustomCase {
  kind: 'custom';
  id: string;
  order: number;
  title: string;
  run(env: BenchEnv, sofar: Readonly<BenchResults>): Promise<CaseOutput>;
}

export type BenchCase = ProxyCase | CustomCase;
