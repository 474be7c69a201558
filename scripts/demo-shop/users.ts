// Seeded, deterministic user population for the demo shop. The traffic simulator imports
// makeUsers() with the same seed to know which phones are registered and which passwords are
// weak, so everything here must depend on (seed, count) only: no Date.now(), no Math.random().

export const DEFAULT_SEED = 42;
export const DEFAULT_USER_COUNT = 5_000;
export const FIRST_USER_ID = 1000;
export const FIRST_ORDER_ID = 500_000;
export const MAX_ORDERS_PER_USER = 5;
/** Share of users whose password comes from COMMON_PASSWORDS. */
export const WEAK_PASSWORD_SHARE = 0.2;

/** Every seeded phone is in 13800000000–13800099999; most of the block is unregistered. */
export const PHONE_BLOCK = Object.freeze({
  prefix: '13800',
  first: 13_800_000_000,
  size: 100_000,
});

/** The weak passwords a credential-stuffing list would try first. */
export const COMMON_PASSWORDS: readonly string[] = Object.freeze([
  '123456', 'password', 'qwerty123', '12345678', '111111', '123123',
  'abc123', 'iloveyou', 'admin123', '666666', '888888', 'password1',
]);

export interface DemoOrderItem {
  sku: string;
  qty: number;
  price_cents: number;
}

export interface DemoOrder {
  id: number;
  user_id: number;
  status: 'paid' | 'shipped' | 'delivered' | 'cancelled';
  items: DemoOrderItem[];
  total_cents: number;
  created_at: string;
  shipping_address: string;
}

export interface DemoProfile {
  name: string;
  email: string;
  city: string;
  birth_year: number;
  member_since: string;
  tier: 'basic' | 'silver' | 'gold';
}

export interface DemoUser {
  id: number;
  username: string;
  phone: string;
  /** Plain text on purpose: this is demo data the simulator replays. */
  password: string;
  weak_password: boolean;
  profile: DemoProfile;
  orders: DemoOrder[];
}

/** mulberry32: tiny, fast, good enough for demo data; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The phone number at `offset` (0 ≤ offset < PHONE_BLOCK.size) in the block. */
export function phoneInBlock(offset: number): string {
  if (!Number.isInteger(offset) || offset < 0 || offset >= PHONE_BLOCK.size) {
    throw new RangeError(`phone offset ${offset} outside 0..${PHONE_BLOCK.size - 1}`);
  }
  return String(PHONE_BLOCK.first + offset);
}

const FIRST_NAMES = [
  'wei', 'fang', 'min', 'jing', 'lei', 'yan', 'jun', 'hui', 'tao', 'ying',
  'alex', 'sam', 'maria', 'chen', 'li', 'nina', 'omar', 'lucas', 'emma', 'ivan',
] as const;
const LAST_NAMES = [
  'wang', 'li', 'zhang', 'liu', 'chen', 'yang', 'zhao', 'huang', 'zhou', 'wu',
  'smith', 'garcia', 'kim', 'nguyen', 'silva', 'novak', 'khan', 'meyer', 'rossi', 'sato',
] as const;
const CITIES = ['Beijing', 'Shanghai', 'Shenzhen', 'Hangzhou', 'Chengdu', 'Wuhan', 'Nanjing', 'Xi\'an'] as const;
const STREETS = ['Renmin Rd', 'Jiefang Ave', 'Zhongshan Rd', 'Heping St', 'Jianshe Rd', 'Xinhua St'] as const;
const SKUS = ['SKU-TEA-01', 'SKU-MUG-02', 'SKU-CABLE-03', 'SKU-BOOK-04', 'SKU-LAMP-05', 'SKU-BAG-06'] as const;
const STATUSES = ['paid', 'shipped', 'delivered', 'cancelled'] as const;
const TIERS = ['basic', 'basic', 'basic', 'silver', 'silver', 'gold'] as const;
const STRONG_CHARS = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!@#$%'.split('');

// Fixed epoch so dates do not depend on when the generator runs.
const EPOCH_MS = Date.UTC(2022, 0, 1);
const DAY_MS = 86_400_000;

function pick<T>(rng: () => number, list: readonly T[]): T {
  // The index is always in range; the non-null assertion satisfies noUncheckedIndexedAccess.
  return list[Math.floor(rng() * list.length)]!;
}

function int(rng: () => number, min: number, max: number): number {
  return min + Math.floor(rng() * (max - min + 1));
}

function strongPassword(rng: () => number): string {
  let out = '';
  for (let i = 0; i < 14; i++) out += pick(rng, STRONG_CHARS);
  return out;
}

function isoDay(days: number): string {
  return new Date(EPOCH_MS + days * DAY_MS).toISOString();
}

/**
 * Build the population: `count` users with ids FIRST_USER_ID.., distinct phones drawn from
 * PHONE_BLOCK, ~WEAK_PASSWORD_SHARE weak passwords, and 0–5 orders each with sequential ids
 * from FIRST_ORDER_ID. Same (seed, count) → identical data.
 */
export function makeUsers(seed: number = DEFAULT_SEED, count: number = DEFAULT_USER_COUNT): DemoUser[] {
  if (!Number.isInteger(count) || count < 0 || count > PHONE_BLOCK.size / 2) {
    // Keep at least half the block unregistered so enumeration has something to miss.
    throw new RangeError(`user count ${count} outside 0..${PHONE_BLOCK.size / 2}`);
  }
  const rng = mulberry32(seed);
  const usedPhones = new Set<number>();
  const usedNames = new Set<string>();
  const users: DemoUser[] = [];
  let nextOrderId = FIRST_ORDER_ID;

  for (let i = 0; i < count; i++) {
    const id = FIRST_USER_ID + i;

    let offset = Math.floor(rng() * PHONE_BLOCK.size);
    while (usedPhones.has(offset)) offset = Math.floor(rng() * PHONE_BLOCK.size);
    usedPhones.add(offset);

    const first = pick(rng, FIRST_NAMES);
    const last = pick(rng, LAST_NAMES);
    let username = `${first}_${last}${int(rng, 1, 99)}`;
    if (usedNames.has(username)) username = `${first}_${last}_${id}`;
    usedNames.add(username);

    const weak = rng() < WEAK_PASSWORD_SHARE;
    const password = weak ? pick(rng, COMMON_PASSWORDS) : strongPassword(rng);
    const city = pick(rng, CITIES);
    const memberDays = int(rng, 0, 900);

    const orders: DemoOrder[] = [];
    const orderCount = int(rng, 0, MAX_ORDERS_PER_USER);
    for (let k = 0; k < orderCount; k++) {
      const items: DemoOrderItem[] = [];
      const itemCount = int(rng, 1, 3);
      for (let j = 0; j < itemCount; j++) {
        items.push({ sku: pick(rng, SKUS), qty: int(rng, 1, 4), price_cents: int(rng, 199, 19_999) });
      }
      orders.push({
        id: nextOrderId++,
        user_id: id,
        status: pick(rng, STATUSES),
        items,
        total_cents: items.reduce((sum, it) => sum + it.qty * it.price_cents, 0),
        created_at: isoDay(memberDays + int(rng, 0, 200)),
        shipping_address: `${int(rng, 1, 999)} ${pick(rng, STREETS)}, ${city}`,
      });
    }

    users.push({
      id,
      username,
      phone: phoneInBlock(offset),
      password,
      weak_password: weak,
      profile: {
        name: `${first[0]!.toUpperCase()}${first.slice(1)} ${last[0]!.toUpperCase()}${last.slice(1)}`,
        email: `${username}@example.com`,
        city,
        birth_year: int(rng, 1955, 2005),
        member_since: isoDay(memberDays),
        tier: pick(rng, TIERS),
      },
      orders,
    });
  }
  return users;
}
