import t from 'tap';
import { MemoryStore } from '../../../decision-service/src/state/memory-store.ts';
import { storeContract } from './store-contract.ts';

storeContract(t, async ({ maxKeys }) => ({
  store: new MemoryStore({ maxKeys }),
  sync: async () => {},
  close: async () => {},
}));
