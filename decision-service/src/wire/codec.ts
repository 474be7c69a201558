// Wire codec: protobuf (protobufjs, reflection from verdict.proto) and JSON with the same field
// names. Decoding always ends in the zod schemas, so both encodings are validated the same way.

import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { z } from 'zod';
import { VerdictError } from '../errors.ts';
import { fastValidateDecide } from './fast-validate.ts';
import { decideRequestSchema, outcomeBatchSchema, type DecideRequest, type OutcomeBatch } from './schema.ts';

export const PROTO_PATH = fileURLToPath(new URL('./verdict.proto', import.meta.url));

// keepCase: the JSON contract and the Lua codec use the .proto's snake_case names.
const root = new protobuf.Root().loadSync(PROTO_PATH, { keepCase: true });
root.resolveAll();
export const DecideRequestType = root.lookupType('verdict.v1.DecideRequest');
export const DecideResponseType = root.lookupType('verdict.v1.DecideResponse');
export const OutcomeBatchType = root.lookupType('verdict.v1.OutcomeBatch');
export const OutcomeAckType = root.lookupType('verdict.v1.OutcomeAck');

export const ACTION_CODES = { ALLOW: 0, TAG: 1, CHALLENGE: 2, BLOCK: 3 } as const;
export type Action = keyof typeof ACTION_CODES;

export interface DecideResponse {
  request_id: string;
  action: Action;
  score: number;
  reasons: string[];
  cache_key: string;
  cache_ttl_s: number;
  policy_version: string;
  dry_run: boolean;
}

export interface OutcomeAck {
  accepted: number;
  verdicts: DecideResponse[];
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

export function decodeOutcomeBatch(body: unknown, encoding: Encoding): OutcomeBatch {
  return decodeWith(OutcomeBatchType, outcomeBatchSchema, body, encoding);
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
  return m;
}

export function encodeDecideResponse(r: DecideResponse): Uint8Array {
  return DecideResponseType.encode(DecideResponseType.fromObject(responseMessage(r))).finish();
}

export function encodeOutcomeAck(ack: OutcomeAck): Uint8Array {
  return OutcomeAckType.encode(
    OutcomeAckType.fromObject({ accepted: ack.accepted, verdicts: ack.verdicts.map(responseMessage) }),
  ).finish();
}
