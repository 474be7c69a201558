// The detectors' store keys, byte for byte: state kept under them (in Redis, across restarts and
// a fleet) is found again only if they never change.

import t from 'tap';
import {
  automationKeys,
  credentialStuffingKeys,
  enumerationKeys,
  promoAbuseKeys,
  sensitivePathKeys,
  subject,
  traversalKeys,
} from '../../../decision-service/src/engine/state-keys.ts';

t.test('subjects', async (t) => {
  t.same(
    [subject.client('1.2.3.4|fp'), subject.ip('1.2.3.4'), subject.subnet('1.2.3.0/24'), subject.device('d'), subject.session('s'), subject.principal('p'), subject.headerSet('h'), subject.identifier('i')],
    ['ipfp:1.2.3.4|fp', 'ip:1.2.3.4', 'sn:1.2.3.0/24', 'dev:d', 'ses:s', 'pr:p', 'hs:h', 'id:i'],
  );
});

t.test('every detector key keeps its layout', async (t) => {
  const s = subject.client('1.2.3.4|fp');
  const pinned: Array<[string, string]> = [
    [sensitivePathKeys.probes('1.2.3.4'), 'sp:1.2.3.4'],
    [enumerationKeys.identifiers(s), 'en:i:ipfp:1.2.3.4|fp'],
    [enumerationKeys.notFound(subject.headerSet('h')), 'en:nf:hs:h'],
    [enumerationKeys.requests(subject.headerSet('h')), 'en:req:hs:h'],
    [enumerationKeys.numberBlock(1234), 'en:blk:1234'],
    [enumerationKeys.enumerated('i'), 'en:seen:i'],
    [credentialStuffingKeys.failures(subject.subnet('n')), 'cs:f:sn:n'],
    [credentialStuffingKeys.failures(subject.headerSet('h')), 'cs:f:hs:h'],
    [credentialStuffingKeys.failures(subject.identifier('i')), 'cs:f:id:i'],
    [credentialStuffingKeys.attempts(subject.headerSet('h')), 'cs:all:hs:h'],
    [credentialStuffingKeys.loggedIn('1.2.3.4|fp'), 'cs:ok:1.2.3.4|fp'],
    [credentialStuffingKeys.passwordIdentifiers('pw'), 'cs:pw:pw'],
    [credentialStuffingKeys.globalAttempts, 'cs:g:all'],
    [credentialStuffingKeys.globalFailures, 'cs:g:fail'],
    [credentialStuffingKeys.globalBaseline, 'cs:g:base'],
    [traversalKeys.objects(subject.principal('p')), 'tv:o:pr:p'],
    [traversalKeys.lastObject(subject.session('s'), 'orders'), 'tv:last:ses:s:orders'],
    [traversalKeys.sequentialRun(subject.device('d')), 'tv:run:dev:d'],
    [traversalKeys.notFound(subject.principal('p')), 'tv:nf:pr:p'],
    [promoAbuseKeys.precursorClient('c'), 'pre:c:c'],
    [promoAbuseKeys.precursorSession('s'), 'pre:s:s'],
    [promoAbuseKeys.precursorPrincipal('p'), 'pre:p:p'],
    [promoAbuseKeys.precursorDevice('d'), 'pre:d:d'],
    [promoAbuseKeys.freshAccountClient('c'), 'new:c:c'],
    [promoAbuseKeys.freshAccountDevice('d'), 'new:d:d'],
    [promoAbuseKeys.claims(subject.device('d')), 'pr:c:dev:d'],
    [promoAbuseKeys.claims(subject.principal('p')), 'pr:c:pr:p'],
    [promoAbuseKeys.accountsPerDevice('d'), 'pr:acct:d'],
    [promoAbuseKeys.claimArrivals('fp'), 'pr:t:fp'],
    [automationKeys.clientArrivals('c'), 'au:t:c'],
    [automationKeys.fingerprintArrivals('fp'), 'au:tf:fp'],
    [automationKeys.regularClient('c'), 'au:bot:c:c'],
    [automationKeys.requests('c'), 'au:r:c'],
  ];
  for (const [got, want] of pinned) t.equal(got, want);
});
