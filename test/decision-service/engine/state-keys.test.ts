// The detectors' store keys, byte for byte: state kept under them (in Redis, across restarts and
// a fleet) is found again only if they never change.

import t from 'tap';
import {
  authzKeys,
  automationKeys,
  credentialStuffingKeys,
  enumerationKeys,
  promoAbuseKeys,
  provenanceKeys,
  sensitivePathKeys,
  subject,
  traversalKeys,
  exfilKeys,
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
    [enumerationKeys.requests(subject.ip('1.2.3.4')), 'en:req:ip:1.2.3.4'],
    [enumerationKeys.routeRequests('login'), 'en:g:req:login'],
    [enumerationKeys.routeNotFound('login'), 'en:g:nf:login'],
    [enumerationKeys.routeBaseline('login'), 'en:g:base:login'],
    [credentialStuffingKeys.attempts(subject.session('s')), 'cs:all:ses:s'],
    [credentialStuffingKeys.cleanFailures(subject.ip('1.2.3.4')), 'cs:fc:ip:1.2.3.4'],
    [credentialStuffingKeys.cleanAttempts(subject.headerSet('h')), 'cs:allc:hs:h'],
    [enumerationKeys.cleanIdentifiers(s), 'en:ic:ipfp:1.2.3.4|fp'],
    [traversalKeys.requests(subject.principal('p')), 'tv:req:pr:p'],
    [traversalKeys.routeRequests('order'), 'tv:g:req:order'],
    [traversalKeys.routeNotFound('order'), 'tv:g:nf:order'],
    [traversalKeys.routeBaseline('order'), 'tv:g:base:order'],
    [exfilKeys.values(subject.principal('p')), 'ex:v:pr:p'],
    [exfilKeys.novel(subject.client('c')), 'ex:n:ipfp:c'],
    [exfilKeys.receivers('00ff00ff00ff00ff'), 'ex:r:00ff00ff00ff00ff'],
    // issue 14: promo keys moved from "pr:" (the principal subject's prefix), "pre:" and "new:" to "po:"
    [promoAbuseKeys.precursor(subject.client('c')), 'po:pre:ipfp:c'],
    [promoAbuseKeys.precursor(subject.session('s')), 'po:pre:ses:s'],
    [promoAbuseKeys.precursor(subject.principal('p')), 'po:pre:pr:p'],
    [promoAbuseKeys.precursor(subject.device('d')), 'po:pre:dev:d'],
    [promoAbuseKeys.freshAccount(subject.client('c')), 'po:new:ipfp:c'],
    [promoAbuseKeys.freshAccount(subject.device('d')), 'po:new:dev:d'],
    [promoAbuseKeys.freshAccount(subject.session('s')), 'po:new:ses:s'],
    [promoAbuseKeys.freshIdentifier('h'), 'po:nid:h'],
    [promoAbuseKeys.claims(subject.device('d')), 'po:c:dev:d'],
    [promoAbuseKeys.claims(subject.principal('p')), 'po:c:pr:p'],
    [promoAbuseKeys.accountsPerDevice('d'), 'po:acct:d'],
    [promoAbuseKeys.claimArrivals('fp'), 'po:t:fp'],
    [provenanceKeys.firstSeen(subject.device('d')), 'ps:first:dev:d'],
    [provenanceKeys.pageLoad('1.2.3.4|fp'), 'ps:page:1.2.3.4|fp'],
    [provenanceKeys.issued('s'), 'ps:issued:s'],
    [automationKeys.clientArrivals('c'), 'au:t:c'],
    [automationKeys.fingerprintArrivals('fp'), 'au:tf:fp'],
    [automationKeys.regularClient('c'), 'au:bot:c:c'],
    [automationKeys.requests('c'), 'au:r:c'],
    // issue 14, 2026-12-02
    [traversalKeys.routeObjects(subject.principal('p'), 'user-profile'), 'tv:ro:pr:p:user-profile'],
    [credentialStuffingKeys.unknownAttempts, 'cs:g:u:all'],
    [credentialStuffingKeys.unknownFailures, 'cs:g:u:fail'],
    [enumerationKeys.automationIdentifiers, 'en:auto:ids'],
    [enumerationKeys.unknownRequests('password-reset'), 'en:u:all:password-reset'],
    [enumerationKeys.unknownNotFound('password-reset'), 'en:u:nf:password-reset'],
    [exfilKeys.youngHarvesters, 'ex:farm'],
    [promoAbuseKeys.accountsPerSession('s'), 'po:acs:s'],
    [authzKeys.rejected(subject.principal('p')), 'az:401:pr:p'],
    [authzKeys.accepted(subject.principal('p')), 'az:ok:pr:p'],
  ];
  for (const [got, want] of pinned) t.equal(got, want);
});
