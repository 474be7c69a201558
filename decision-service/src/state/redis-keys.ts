// Redis key layout of the shared store. Every Redis key of one store key carries the store key
// as its hash tag, so all its buckets live in one Redis Cluster slot (multi-key reads and the
// Lua scripts stay single-slot). A store key holding "}" still maps deterministically to one
// slot: Redis hashes up to the first "}", which is the same prefix for all of its keys.
//
//   <prefix>{<key>}:c:<windowMs>:<bucket>   counter bucket (INCRBY), TTL 2 windows + slack
//   <prefix>{<key>}:ds:<windowMs>:<bucket>  distinct bucket, exact set (≤ 25 members)
//   <prefix>{<key>}:dr:<windowMs>:<bucket>  distinct bucket, 128 HyperLogLog registers
//   <prefix>{<key>}:m                        mark: "until" (engine ms), max-merged, TTL = mark ttl
//   <prefix>{<key>}:a                        arrivals: last 9 timestamps (list)
//   <prefix>{<key>}:v                        remembered value "at|expires|value", newest wins
//   <prefix>{~instance:<id>}                 liveness marker of one store instance (restart check)

export const counterKey = (prefix: string, key: string, windowMs: number, bucket: number) => `${prefix}{${key}}:c:${windowMs}:${bucket}`;
export const distinctSetKey = (prefix: string, key: string, windowMs: number, bucket: number) => `${prefix}{${key}}:ds:${windowMs}:${bucket}`;
export const distinctRegKey = (prefix: string, key: string, windowMs: number, bucket: number) => `${prefix}{${key}}:dr:${windowMs}:${bucket}`;
export const markKey = (prefix: string, key: string) => `${prefix}{${key}}:m`;
export const arrivalKey = (prefix: string, key: string) => `${prefix}{${key}}:a`;
export const valueKey = (prefix: string, key: string) => `${prefix}{${key}}:v`;
export const instanceKey = (prefix: string, id: string) => `${prefix}{~instance:${id}}`;

/** Redis Cluster hash slot of a key (CRC16/XMODEM of the hash tag, mod 16384). */
export function keySlot(key: string): number {
  let s = key.indexOf('{');
  let e = s >= 0 ? key.indexOf('}', s + 1) : -1;
  if (s < 0 || e === s + 1 || e < 0) {
    s = -1;
    e = key.length;
  }
  const bytes = Buffer.from(key.slice(s + 1, e), 'utf8');
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc & 16383;
}
