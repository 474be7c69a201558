// Redis key layout of the shared store. Every Redis key of one store key carries the store key
// as its hash tag, so all its buckets live in one Redis Cluster slot: the multi-key reads and
// the Lua scripts of one store key stay single-slot, and the store routes each command to the
// node of that slot (redis-batch.ts). Redis hashes from the first "{" to the next "}", so a
// store key holding "}" still maps to one slot (the same prefix for all of its keys); only an
// empty tag ("{}") would make Redis hash the whole key, which tagOf() prevents.
//
//   <prefix>{<key>}:c:<windowMs>:<bucket>   counter bucket (INCRBY), TTL 2 windows + slack
//   <prefix>{<key>}:ds:<windowMs>:<bucket>  distinct bucket, exact set (≤ 25 members)
//   <prefix>{<key>}:dr:<windowMs>:<bucket>  distinct bucket, 128 HyperLogLog registers
//   <prefix>{<key>}:m                        mark: "until" (engine ms), max-merged, TTL = mark ttl
//   <prefix>{<key>}:a                        arrivals: last 9 timestamps (list)
//   <prefix>{<key>}:v                        remembered value "at|expires|value", newest wins
//   <prefix>{~instance:<id>}                 liveness marker of one store instance (restart check)
//   <prefix>{~instances}                     live instances: sorted set, member = instance id,
//                                            score = wall-clock ms until which it counts as live
//
// A prefix holding "{" puts every key into the slot of the prefix's tag: correct, but one node
// then holds all of the state.

/**
 * The hash tag of a store key: the key itself, except that an empty key or one starting with
 * "}" or "\" gets a leading "\" (an empty tag would spread its buckets over several slots). The
 * engine's keys ("<detector>:<name>:<value>") never start with either, so they are unchanged;
 * the escape is injective, so two store keys never share a Redis key.
 */
function tagOf(key: string): string {
  const c = key.charCodeAt(0);
  return c === 0x7d || c === 0x5c || key.length === 0 ? `\\${key}` : key;
}

export const counterKey = (prefix: string, key: string, windowMs: number, bucket: number) => `${prefix}{${tagOf(key)}}:c:${windowMs}:${bucket}`;
export const distinctSetKey = (prefix: string, key: string, windowMs: number, bucket: number) => `${prefix}{${tagOf(key)}}:ds:${windowMs}:${bucket}`;
export const distinctRegKey = (prefix: string, key: string, windowMs: number, bucket: number) => `${prefix}{${tagOf(key)}}:dr:${windowMs}:${bucket}`;
export const markKey = (prefix: string, key: string) => `${prefix}{${tagOf(key)}}:m`;
export const arrivalKey = (prefix: string, key: string) => `${prefix}{${tagOf(key)}}:a`;
export const valueKey = (prefix: string, key: string) => `${prefix}{${tagOf(key)}}:v`;
export const instanceKey = (prefix: string, id: string) => `${prefix}{~instance:${id}}`;
export const instancesKey = (prefix: string) => `${prefix}{~instances}`;
