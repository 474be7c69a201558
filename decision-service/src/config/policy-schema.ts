// The policy file's schema (YAML → this zod schema → compiled policy). Every field has a default
// where a safe one exists, and a description that becomes the error hint. policies/README.md
// documents the same fields for operators.

import { z } from 'zod';

export const ROUTE_CLASSES = ['public', 'protected', 'identity', 'promo', 'object', 'internal', 'static'] as const;
export type RouteClass = (typeof ROUTE_CLASSES)[number];

export const ACTIONS = ['allow', 'tag', 'challenge', 'block'] as const;
export type ActionName = (typeof ACTIONS)[number];

export const CACHE_KEY_TYPES = ['ip', 'subnet', 'device', 'session', 'principal'] as const;
export type CacheKeyType = (typeof CACHE_KEY_TYPES)[number];

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

const pathPattern = z
  .string()
  .startsWith('/', { message: 'a path pattern starts with "/" (e.g. "/api/orders/{id}" or "/static/**")' });

const cacheSpec = z
  .object({
    key: z.enum(CACHE_KEY_TYPES),
    ttl_s: z.number().int().min(1).max(86_400),
  })
  .strict();

const thresholds = z
  .object({
    tag: z.number().min(0).max(100).default(30),
    challenge: z.number().min(0).max(101).default(60),
    block: z.number().min(0).max(101).default(80),
  })
  .strict()
  .refine((t) => t.tag <= t.challenge && t.challenge <= t.block, {
    message: 'thresholds must satisfy tag <= challenge <= block (use 101 to disable an action)',
  });

export const routeSchema = z
  .object({
    name: z.string().min(1).regex(/^[a-z0-9_.-]+$/, 'use lower-case letters, digits, "_", "-" or "."'),
    class: z.enum(ROUTE_CLASSES),
    methods: z.array(z.enum(METHODS)).min(1).optional(),
    path: pathPattern,
    route_tag: z.string().optional(),
    auth: z.enum(['required', 'optional']).optional(),
    deprecated: z.boolean().default(false),
  })
  .strict();

const detectorBase = {
  enabled: z.boolean().default(true),
  monitor: z.boolean().default(false),
};

export const policySchema = z
  .object({
    version: z.string().min(1),
    internal_ranges: z.array(z.string()).default(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7']),
    ip_lists: z
      .object({
        allow: z.array(z.string()).default([]),
        deny: z.array(z.string()).default([]),
        deny_cache_ttl_s: z.number().int().min(0).max(86_400).default(300),
      })
      .strict()
      .prefault({}),
    routes: z.array(routeSchema).min(1),
    default_class: z.enum(ROUTE_CLASSES).default('protected'),
    thresholds: z.partialRecord(z.enum(ROUTE_CLASSES), thresholds).prefault({}),
    detectors: z
      .object({
        missing_credentials: z
          .object({ ...detectorBase, score: z.number().min(0).max(100).default(85) })
          .strict()
          .prefault({}),
        internal_route: z
          .object({ ...detectorBase, score: z.number().min(0).max(100).default(100) })
          .strict()
          .prefault({}),
        sensitive_path: z
          .object({
            ...detectorBase,
            score: z.number().min(0).max(100).default(100),
            patterns: z.array(z.string().min(1)).optional(),
            extra_patterns: z.array(z.string().min(1)).default([]),
            cache: cacheSpec.optional(),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type PolicyInput = z.input<typeof policySchema>;
export type PolicyDoc = z.output<typeof policySchema>;
export type RouteDoc = z.output<typeof routeSchema>;
