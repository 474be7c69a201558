// Standalone demo shop: `tsx scripts/demo-shop/main.ts`. The only file here that reads the env.

import { z } from 'zod';
import { DEFAULT_HOST, DEFAULT_PORT, DEFAULT_PROMO_INVENTORY, startShop } from './app.ts';
import { DEFAULT_SEED, DEFAULT_USER_COUNT } from './users.ts';

const EnvSchema = z.object({
  DEMO_SHOP_PORT: z.coerce.number().int().min(0).max(65535).default(DEFAULT_PORT),
  DEMO_SHOP_HOST: z.string().min(1).default(DEFAULT_HOST),
  DEMO_SHOP_SEED: z.coerce.number().int().default(DEFAULT_SEED),
  DEMO_SHOP_USERS: z.coerce.number().int().min(0).default(DEFAULT_USER_COUNT),
  DEMO_SHOP_PROMO_INVENTORY: z.coerce.number().int().min(0).default(DEFAULT_PROMO_INVENTORY),
  DEMO_SHOP_LOG: z.enum(['0', '1']).default('0'),
});

const parsed = EnvSchema.safeParse(process.env);
if (!parsed.success) {
  for (const issue of parsed.error.issues) console.error(`demo shop: ${issue.path.join('.')}: ${issue.message}`);
  process.exit(1);
}
const env = Object.freeze(parsed.data);

const shop = await startShop({
  port: env.DEMO_SHOP_PORT,
  host: env.DEMO_SHOP_HOST,
  seed: env.DEMO_SHOP_SEED,
  users: env.DEMO_SHOP_USERS,
  promoInventory: env.DEMO_SHOP_PROMO_INVENTORY,
  logger: env.DEMO_SHOP_LOG === '1',
});
console.log(`demo shop listening on ${shop.url}`);

let closing = false;
const stop = (): void => {
  if (closing) return;
  closing = true;
  shop.close().then(() => process.exit(0), () => process.exit(1));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
