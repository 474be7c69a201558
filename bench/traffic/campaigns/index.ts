// The campaign generators by kind. A scenario names a campaign (its id, the label's
// `attack:<id>`), its kind and its parameters, and what its clients do when challenged
// (`client`: the lines' sim.client; a generator that drives browsers names its own per line).

import type { ClientKind } from '../format.ts';
import type { GenContext } from '../simulator.ts';
import { credentialStuffing, type StuffingParams } from './credential-stuffing.ts';
import { dataTraversal, type TraversalParams } from './data-traversal.ts';
import { enumeration, type EnumerationParams } from './enumeration.ts';
import { harvest, type HarvestParams } from './harvest.ts';
import { passwordSpraying, type SprayingParams } from './password-spraying.ts';
import { probing, type ProbingParams } from './probing.ts';
import { promoBots, type PromoBotParams } from './promo-bots.ts';
import { scraping, type ScrapingParams } from './scraping.ts';
import { unauthenticated, type UnauthenticatedParams } from './unauthenticated.ts';

/** What every campaign declares besides its kind and parameters. */
interface CampaignBase {
  id: string;
  /** its tools: script (HTTP libraries: cannot pass a challenge), solver (scripts with the reference solver), headless (browsers); default script */
  client?: ClientKind;
}

export type CampaignSpec = CampaignBase & (
  | { kind: 'enumeration'; params: EnumerationParams }
  | { kind: 'credential-stuffing'; params: StuffingParams }
  | { kind: 'password-spraying'; params: SprayingParams }
  | { kind: 'data-traversal'; params: TraversalParams }
  | { kind: 'unauthenticated'; params: UnauthenticatedParams }
  | { kind: 'probing'; params: ProbingParams }
  | { kind: 'promo-bots'; params: PromoBotParams }
  | { kind: 'scraping'; params: ScrapingParams }
  | { kind: 'harvest'; params: HarvestParams });

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
    case 'harvest': return harvest(ctx, c.params);
  }
}

/**
 * The families the worlds report (worlds-report.ts) judges campaigns by: every kind belongs to
 * one, and a family's result in a world is its worst campaign there.
 */
export const FAMILIES = ['enumeration', 'credential-stuffing', 'bola', 'promo-abuse', 'probing', 'scraping', 'harvest'] as const;
export type Family = (typeof FAMILIES)[number];

export const FAMILY_OF: Readonly<Record<CampaignSpec['kind'], Family>> = Object.freeze({
  enumeration: 'enumeration',
  'credential-stuffing': 'credential-stuffing',
  'password-spraying': 'credential-stuffing',
  'data-traversal': 'bola',
  'promo-bots': 'promo-abuse',
  probing: 'probing',
  unauthenticated: 'probing',
  scraping: 'scraping',
  harvest: 'harvest',
});
