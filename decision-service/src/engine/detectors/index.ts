// The detector set, in evaluation order. Adding a detector is one file plus one line here.

import type { DetectorFactory } from '../signal.ts';
import { automation } from './automation.ts';
import { credentialStuffing } from './credential-stuffing.ts';
import { enumeration } from './enumeration.ts';
import { exfil } from './exfil.ts';
import { injection } from './injection.ts';
import { internalRoute } from './internal-route.ts';
import { missingCredentials } from './missing-credentials.ts';
import { promoAbuse } from './promo-abuse.ts';
import { provenance } from './provenance.ts';
import { sensitivePath } from './sensitive-path.ts';
import { shadowZombie } from './shadow-zombie.ts';
import { traversal } from './traversal.ts';

export const DETECTORS: readonly DetectorFactory[] = [
  // first: records when sessions, devices and account tokens were first seen, which later ones read
  provenance,
  sensitivePath,
  injection,
  internalRoute,
  missingCredentials,
  shadowZombie,
  enumeration,
  credentialStuffing,
  traversal,
  exfil,
  promoAbuse,
  automation,
];
