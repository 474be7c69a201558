// What the gateway's response inspection reports for one simulated response body (issue 17): the
// TypeScript reference of the Lua gateway's detector (decision-service/src/gateway/sensitive.ts,
// checked against the Lua one on the shared vectors in gateway-plugin/spec/sensitive-vectors.json).
// Nothing else in the simulator knows how responses are inspected.
export { inspectResponse, type InspectOptions } from '../../decision-service/src/gateway/sensitive.ts';
