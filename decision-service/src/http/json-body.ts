// JSON bodies, checked before they are parsed. Size is bounded per route (fastify's bodyLimit,
// from the Content-Length before reading, else while reading); nesting is checked here by one
// linear scan, because a megabyte of `[[[[…` costs JSON.parse and the validators far more than its
// size suggests (the issue measured the event loop held 1.1 s by one 4 MB body). The deepest wire
// message (OutcomeBatch → Outcome → DecideRequest → header_names) is 4 levels.

import type { FastifyInstance } from 'fastify';
import { VerdictError } from '../errors.ts';

export const MAX_JSON_DEPTH = 8;

const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;

/** The deepest nesting of objects/arrays in `text`, stopping early once it exceeds `max`. */
export function jsonDepth(text: string, max: number): number {
  let depth = 0;
  let deepest = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // Skip the string: brackets inside it do not nest.
      for (i++; i < n; i++) {
        const s = text.charCodeAt(i);
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > max) return deepest;
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return deepest;
}

/** Replaces fastify's JSON parser with one that refuses deep nesting before parsing. */
export function registerJsonParser(app: FastifyInstance, maxDepth = MAX_JSON_DEPTH): void {
  // fastify's own parser (secure-json-parse: refuses __proto__ / constructor.prototype keys).
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = body as string;
    if (jsonDepth(text, maxDepth) > maxDepth) {
      done(new VerdictError('TOO_DEEP', `more than ${maxDepth} levels of objects/arrays`), undefined);
      return;
    }
    // the exact text, for the gateway signature (auth/gateway-auth.ts), which covers the body bytes
    (req as unknown as { rawJson?: string }).rawJson = text;
    parse(req, text, done);
  });
}
