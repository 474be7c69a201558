// One catalogue of the errors the service answers with: stable codes, HTTP statuses, messages.
// Expected outcomes (allow, block, challenge) are return values, never errors.

export const ERRORS = {
  BAD_CONTENT_TYPE: { status: 415, message: 'send application/x-protobuf or application/json' },
  BAD_BODY: { status: 400, message: 'the body could not be decoded' },
  INVALID_FIELD: { status: 400, message: 'a field failed validation' },
  BODY_TOO_LARGE: { status: 413, message: 'the body is larger than the service accepts' },
  TOO_DEEP: { status: 400, message: 'the JSON body is nested deeper than any wire message' },
  // The gateway stopped waiting (budget_ms after ts_ms): the decision is not computed. 504 as
  // for a proxy that gave up on its upstream; the gateway has failed open already.
  DEADLINE: { status: 504, message: 'the gateway deadline passed before the decision started' },
  NOT_FOUND: { status: 404, message: 'no such route' },
  FORBIDDEN: { status: 403, message: 'this endpoint needs the admin token or a loopback client' },
  // Decide/outcome calls without proof of the gateway secret, admin calls without the token.
  AUTH: { status: 401, message: 'authenticate: gateways sign with the gateway secret (X-Verdict-Auth), admin calls send Authorization: Bearer <VERDICT_ADMIN_TOKEN>' },
  INTERNAL: { status: 500, message: 'internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class VerdictError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string | undefined;

  constructor(code: ErrorCode, detail?: string) {
    super(detail ? `${ERRORS[code].message}: ${detail}` : ERRORS[code].message);
    this.code = code;
    this.status = ERRORS[code].status;
    this.detail = detail;
  }

  toJSON(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

/** A configuration or policy mistake found at start-up or reload: names where and how to fix. */
export class ConfigError extends Error {
  readonly issues: readonly string[];

  constructor(source: string, issues: readonly string[]) {
    super(`${source}:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.issues = issues;
  }
}
