// Wire codec: protobuf (protobufjs, reflection from verdict.proto) and JSON with the same field
// names. Decoding always ends in the zod schemas, so both encodings are validated the same way.

import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { z } from 'zod';
import { VerdictError } from '../errors.ts';
import { fastValidateDecide, fastValidateOutcomeFields, fastValidateResponseSample } from './fast-validate.ts';
import {
  decideRequestSchema,
  gatewayIdSchema,
  MAX_OUTCOMES_PER_BATCH,
  outcomeBatchSchema,
  outcomeSchema,
  responseSampleSchema,
  type DecideRequest,
  type Outcome,
  type OutcomeBatch,
  type ResponseSample,
  type SensitivePattern,
} from './schema.ts';

export const PROTO_PATH = fileURLToPath(new URL('./verdict.proto', import.meta.url));

// keepCase: the JSON contract and the Lua codec use the .proto's snake_case names.
const root = new protobuf.Root().loadSync(PROTO_PATH, { keepCase: true });
root.resolveAll();
export const DecideRequestType = root.lookupType('verdict.v1.DecideRequest');
export const DecideResponseType = root.lookupType('verdict.v1.DecideResponse');
export const OutcomeBatchType = root.lookupType('verdict.v1.OutcomeBatch');
export const OutcomeType = root.lookupType('verdict.v1.Outcome');
export const OutcomeAckType = root.lookupType('verdict.v1.OutcomeAck');
export const GatewayCounterType = root.lookupType('verdict.v1.GatewayCounter');

export const ACTION_CODES = { ALLOW: 0, TAG: 1, CHALLENGE: 2, BLOCK: 3 } as const;
export type Action = keyof typeof ACTION_CODES;

export const CHALLENGE_KIND_CODES = { DEFAULT: 0, POW: 1, PAGE: 2, STATUS: 3 } as const;
export type ChallengeKind = keyof typeof CHALLENGE_KIND_CODES;

export interface DecideResponse {
  request_id: string;
  action: Action;
  score: number;
  reasons: string[];
  cache_key: string;
  cache_ttl_s: number;
  policy_version: string;
  dry_run: boolean;
  /** CHALLENGE only (CONTRACT.md, "Challenges and clearance"); absent = DEFAULT / 0 / 0. */
  challenge_kind?: ChallengeKind;
  challenge_difficulty?: number;
  clearance_ttl_s?: number;
  /** Issue 17: inspect this request's response (absent = false). */
  inspect?: boolean;
}

export interface OutcomeAck {
  accepted: number;
  verdicts: DecideResponse[];
  /** Gateway cache keys to drop (operator overrides); absent or empty = none. */
  revoked_keys?: string[];
  /** Issue 15: clean marks to drop (the entry under each key only if it is an ALLOW); absent or empty = none. */
  unmarked_keys?: string[];
  /** Issue 17: set only when the batch's patterns_version differed; then `patterns` replaces the gateway's set. */
  patterns_version?: string;
  patterns?: readonly SensitivePattern[];
}

/** A gateway counter carried in an outcome batch (console: fail-open, breaker per gateway). */
export interface GatewayCounter {
  readonly name: string;
  readonly value: number;
}

/** Most counters read from one batch; longer names are skipped. */
const MAX_COUNTERS = 64;
const MAX_COUNTER_NAME = 200;

function validCounter(name: unknown, value: unknown, out: GatewayCounter[]): void {
  if (out.length >= MAX_COUNTERS || typeof name !== 'string' || name.length === 0 || name.length > MAX_COUNTER_NAME) return;
  const v = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : value && typeof value === 'object' && 'low' in value ? Number((value as unknown as { low: number }).low >>> 0) + Number((value as unknown as { high: number }).high >>> 0) * 2 ** 32 : NaN;
  if (Number.isFinite(v) && v >= 0) out.push({ name, value: v });
}

export type Encoding = 'protobuf' | 'json';

function formatIssues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
}

function decodeWith<T>(type: protobuf.Type, schema: z.ZodType<T>, body: Buffer | unknown, encoding: Encoding): T {
  let raw: unknown;
  if (encoding === 'protobuf') {
    if (!Buffer.isBuffer(body)) throw new VerdictError('BAD_BODY', 'expected a protobuf body');
    try {
      // The decoded message is validated as it is (defaults live on its prototype; enums are
      // numbers, bytes are Buffers): no intermediate toObject copy on the hot path.
      raw = type.decode(body);
    } catch (err) {
      throw new VerdictError('BAD_BODY', (err as Error).message);
    }
  } else {
    raw = body;
    if (raw === null || typeof raw !== 'object') throw new VerdictError('BAD_BODY', 'expected a JSON object');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new VerdictError('INVALID_FIELD', formatIssues(parsed.error));
  return parsed.data;
}

export function decodeDecideRequest(body: unknown, encoding: Encoding): DecideRequest {
  if (encoding === 'protobuf' && Buffer.isBuffer(body)) {
    let msg: protobuf.Message;
    try {
      msg = DecideRequestType.decode(body);
    } catch (err) {
      throw new VerdictError('BAD_BODY', (err as Error).message);
    }
    const fast = fastValidateDecide(msg as unknown as Record<string, unknown>);
    if (fast) return fast;
    const parsed = decideRequestSchema.safeParse(msg);
    if (!parsed.success) throw new VerdictError('INVALID_FIELD', formatIssues(parsed.error));
    return parsed.data;
  }
  return decodeWith(DecideRequestType, decideRequestSchema, body, encoding);
}

/**
 * An outcome batch whose envelope is read and whose outcomes are decoded and validated one at a
 * time, so a big batch can be handled in slices between other clients' decisions (a whole-batch
 * decode + zod pass of thousands of outcomes holds the event loop for tens of milliseconds).
 * Opening checks the count against `maxOutcomes` before any outcome is decoded.
 */
export interface PendingOutcomeBatch {
  readonly gateway_id: string;
  /** The gateway's counters (OutcomeBatch.counters), bounded and validated. */
  readonly counters: readonly GatewayCounter[];
  /** The sensitive-patterns version the gateway runs ("" = none yet). */
  readonly patterns_version: string;
  readonly count: number;
  /** Decodes and validates outcome i; throws VerdictError naming `outcomes.<i>.<field>`. */
  outcome(i: number): Outcome;
}

function tooMany(count: number, max: number): VerdictError {
  return new VerdictError('BODY_TOO_LARGE', `the batch holds ${count} outcomes, more than ${max}; send smaller batches (the gateway's outcome_batch_size)`);
}

const outcomeFieldsSchema = outcomeSchema.omit({ request: true, response: true });

function issues(err: z.ZodError, prefix: string): string {
  return err.issues.map((x) => `${prefix}${x.path.join('.')}: ${x.message}`).join('; ');
}

/**
 * A nested message of outcome i (`field`: its async request, its response sample): a decoded
 * protobuf message through its fast path, zod for JSON and for the error message of anything the
 * fast path refuses (zod on the nested request was most of a batch's cost).
 */
function nested<T>(raw: unknown, field: 'request' | 'response', i: number, fromProtobuf: boolean,
  fast: (m: Record<string, unknown>) => T | undefined, schema: z.ZodType<T>): T | undefined {
  const value = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>)[field] : undefined;
  if (value === undefined || value === null) return undefined;
  const quick = fromProtobuf ? fast(value as Record<string, unknown>) : undefined;
  if (quick) return quick;
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new VerdictError('INVALID_FIELD', issues(parsed.error, `outcomes.${i}.${field}.`));
  return parsed.data;
}

/**
 * One outcome: its nested messages as nested() says; its own fields, from protobuf, through the
 * fast path, and otherwise (JSON, or anything the fast path refuses) through zod.
 */
function validOutcome(raw: unknown, i: number, fromProtobuf: boolean): Outcome {
  const request = nested<DecideRequest>(raw, 'request', i, fromProtobuf, fastValidateDecide, decideRequestSchema);
  const response = nested<ResponseSample>(raw, 'response', i, fromProtobuf, fastValidateResponseSample, responseSampleSchema);
  const fast = fromProtobuf ? fastValidateOutcomeFields(raw as Record<string, unknown>, request, response) : undefined;
  if (fast) return fast;
  // zod reads a decoded message's unset fields from its prototype, five times slower than from
  // a plain object; the own (wire) fields copied are the same input, zod supplies the defaults.
  const parsed = outcomeFieldsSchema.safeParse(fromProtobuf ? { ...(raw as object) } : raw);
  if (!parsed.success) throw new VerdictError('INVALID_FIELD', issues(parsed.error, `outcomes.${i}.`));
  return { ...parsed.data, request, response };
}

function validGatewayId(raw: unknown): string {
  const parsed = gatewayIdSchema.safeParse(raw);
  if (!parsed.success) throw new VerdictError('INVALID_FIELD', `gateway_id: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

const patternsVersionSchema = outcomeBatchSchema.shape.patterns_version;

function validPatternsVersion(raw: unknown): string {
  const parsed = patternsVersionSchema.safeParse(raw);
  if (!parsed.success) throw new VerdictError('INVALID_FIELD', `patterns_version: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data ?? '';
}

/** protobuf: one pass over the envelope's tags records each outcome's byte range (no decoding). */
function openProtobufBatch(body: Buffer, maxOutcomes: number): PendingOutcomeBatch {
  const ranges: number[] = [];
  const counters: GatewayCounter[] = [];
  let gatewayId: unknown;
  let patternsVersion: unknown;
  try {
    const r = protobuf.Reader.create(body);
    while (r.pos < r.len) {
      const tag = r.uint32();
      const field = tag >>> 3;
      const wire = tag & 7;
      if (field === 1 && wire === 2) gatewayId = r.string();
      else if (field === 2 && wire === 2) {
        const len = r.uint32();
        const start = r.pos;
        r.skip(len);
        ranges.push(start, start + len);
      } else if (field === 3 && wire === 2) {
        const len = r.uint32();
        const c = GatewayCounterType.decode(r.buf.subarray(r.pos, r.pos + len)) as unknown as { name: unknown; value: unknown };
        r.skip(len);
        validCounter(c.name, c.value, counters);
      } else if (field === 4 && wire === 2) patternsVersion = r.string();
      else r.skipType(wire);
    }
  } catch (err) {
    throw new VerdictError('BAD_BODY', (err as Error).message);
  }
  const count = ranges.length / 2;
  if (count > maxOutcomes) throw tooMany(count, maxOutcomes);
  return {
    gateway_id: validGatewayId(gatewayId),
    counters,
    patterns_version: validPatternsVersion(patternsVersion),
    count,
    outcome(i: number): Outcome {
      let msg: protobuf.Message;
      try {
        msg = OutcomeType.decode(body.subarray(ranges[2 * i], ranges[2 * i + 1]));
      } catch (err) {
        throw new VerdictError('BAD_BODY', `outcomes.${i}: ${(err as Error).message}`);
      }
      return validOutcome(msg, i, true);
    },
  };
}

export function openOutcomeBatch(body: unknown, encoding: Encoding, maxOutcomes = MAX_OUTCOMES_PER_BATCH): PendingOutcomeBatch {
  if (encoding === 'protobuf') {
    if (!Buffer.isBuffer(body)) throw new VerdictError('BAD_BODY', 'expected a protobuf body');
    return openProtobufBatch(body, maxOutcomes);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new VerdictError('BAD_BODY', 'expected a JSON object');
  const raw = body as { gateway_id?: unknown; outcomes?: unknown; counters?: unknown; patterns_version?: unknown };
  const counters: GatewayCounter[] = [];
  if (Array.isArray(raw.counters)) for (const c of raw.counters) if (c && typeof c === 'object') validCounter((c as GatewayCounter).name, (c as GatewayCounter).value, counters);
  const items = raw.outcomes ?? [];
  if (!Array.isArray(items)) throw new VerdictError('INVALID_FIELD', 'outcomes: expected an array');
  if (items.length > maxOutcomes) throw tooMany(items.length, maxOutcomes);
  return {
    gateway_id: validGatewayId(raw.gateway_id),
    counters,
    patterns_version: validPatternsVersion(raw.patterns_version ?? undefined),
    count: items.length,
    outcome: (i) => validOutcome(items[i], i, false),
  };
}

/** Decodes a whole batch at once (tools and tests; the transports use openOutcomeBatch). */
export function decodeOutcomeBatch(body: unknown, encoding: Encoding, maxOutcomes = MAX_OUTCOMES_PER_BATCH): OutcomeBatch {
  const pending = openOutcomeBatch(body, encoding, maxOutcomes);
  const outcomes: Outcome[] = [];
  for (let i = 0; i < pending.count; i++) outcomes.push(pending.outcome(i));
  return { gateway_id: pending.gateway_id, outcomes, patterns_version: pending.patterns_version };
}

/** proto3 leaves default values off the wire; protobufjs writes any field that is set. */
function responseMessage(r: DecideResponse): Record<string, unknown> {
  const m: Record<string, unknown> = { request_id: r.request_id, action: ACTION_CODES[r.action], score: r.score, reasons: r.reasons };
  if (r.cache_key) {
    m.cache_key = r.cache_key;
    m.cache_ttl_s = r.cache_ttl_s;
  }
  m.policy_version = r.policy_version;
  if (r.dry_run) m.dry_run = true;
  if (r.challenge_kind && r.challenge_kind !== 'DEFAULT') m.challenge_kind = CHALLENGE_KIND_CODES[r.challenge_kind];
  if (r.challenge_difficulty) m.challenge_difficulty = r.challenge_difficulty;
  if (r.clearance_ttl_s) m.clearance_ttl_s = r.clearance_ttl_s;
  if (r.inspect) m.inspect = true;
  return m;
}

export function encodeDecideResponse(r: DecideResponse): Uint8Array {
  return DecideResponseType.encode(DecideResponseType.fromObject(responseMessage(r))).finish();
}

export function encodeOutcomeAck(ack: OutcomeAck): Uint8Array {
  return OutcomeAckType.encode(
    OutcomeAckType.fromObject({
      accepted: ack.accepted,
      verdicts: ack.verdicts.map(responseMessage),
      revoked_keys: ack.revoked_keys ?? [],
      unmarked_keys: ack.unmarked_keys ?? [],
      patterns_version: ack.patterns_version ?? '',
      patterns: ack.patterns ?? [],
    }),
  ).finish();
}
