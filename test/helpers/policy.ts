// Test helpers for building policies and requests in unit tests.

import { compilePolicy, type CompiledPolicy } from '../../decision-service/src/config/policy.ts';
import type { PolicyInput } from '../../decision-service/src/config/policy-schema.ts';
import { decideRequestSchema, type DecideRequest } from '../../decision-service/src/wire/schema.ts';

export const BASE_ROUTES: PolicyInput['routes'] = [
  { name: 'static', class: 'static', methods: ['GET'], path: '/static/**' },
  { name: 'home', class: 'public', methods: ['GET'], path: '/' },
  { name: 'login', class: 'identity', methods: ['POST'], path: '/api/auth/login' },
  { name: 'claim', class: 'promo', methods: ['POST'], path: '/api/promo/claim', auth: 'required' },
  { name: 'promo-info', class: 'promo', methods: ['GET'], path: '/api/promo/info' },
  { name: 'order', class: 'object', methods: ['GET'], path: '/api/orders/{id}' },
  { name: 'internal', class: 'internal', path: '/internal/**' },
];

export function policy(overrides: Partial<PolicyInput> = {}): CompiledPolicy {
  return compilePolicy({ version: 't1', routes: BASE_ROUTES, ...overrides }, 'test.yaml');
}

export function request(fields: Record<string, unknown> = {}): DecideRequest {
  return decideRequestSchema.parse({ client_ip: '198.51.100.7', method: 'GET', path: '/', ...fields });
}
