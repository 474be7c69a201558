// The detector set, in evaluation order. Adding a detector is one file plus one line here.

import type { DetectorFactory } from '../signal.ts';
import { internalRoute } from './internal-route.ts';
import { missingCredentials } from './missing-credentials.ts';
import { sensitivePath } from './sensitive-path.ts';

export const DETECTORS: readonly DetectorFactory[] = [sensitivePath, internalRoute, missingCredentials];
