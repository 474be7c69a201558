// The campaign generators by kind. A scenario names a campaign (its id, the label's
// `attack:<id>`), its kind and its parameters.

import type { GenContext } from '../simulator.ts';
import { credentialStuffing, type StuffingParams } from './credential-stuffing.ts';
import { dataTraversal, type TraversalParams } from './data-traversal.ts';
import { enumeration, type EnumerationParams } from './enumeration.ts';
import { passwordSpraying, type SprayingParams } from './password-spraying.ts';
import { probing, type ProbingParams } from './probing.ts';
import { promoBots, type PromoBotParams } from './promo-bots.ts';
import { scraping, type ScrapingParams } from './scraping.ts';
import { unauthenticated, type UnauthenticatedParams } from './unauthenticated.ts';

export type CampaignSpec =
  | { id: string; kind: 'enumeration'; params: EnumerationParams }
  | { id: string; kind: 'credential-stuffing'; params: StuffingParams }
  | { id: string; kind: 'password-spraying'; params: SprayingParams }
  | { id: string; kind: 'data-traversal'; params: TraversalParams }
  | { id: string; kind: 'unauthenticated'; params: UnauthenticatedParams }
  | { id: string; kind: 'probing'; params: ProbingParams }
  | { id: string; kind: 'promo-bots'; params: PromoBotParams }
  | { id: string; kind: 'scraping'; params: ScrapingParams };

export function runCampaign(ctx: GenContext, c: CampaignSpec): void {
  switch (c.kind) {
    case 'enumeration': return enumeration(ctx, c.params);
    case 'credential-stuffing': return credentialStuffing(ctx, c.params);
    case 'password-spraying': return passwordSpraying(ctx, c.params);
    case 'data-traversal': return dataTraversal(ctx, c.params);
    case 'unauthenticated': return unauthenticated(ctx, c.params);
    case 'probing': return probing(ctx, c.params);
    case 'promo-bots': return promoBots(ctx, c.params);
    case 'scraping': return scraping(ctx, c.params);
  }
}
