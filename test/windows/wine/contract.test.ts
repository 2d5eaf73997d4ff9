import { runStoreContract } from '../../store-contract.js';
import { createWindowsStore } from '../../../handler/stores/windows/windowsStore.js';
import { deleteSystemStore, observed, uniqueStoreName } from './fixture.js';

/** The ONE shared store contract, against the real crypt32 (Windows Node under Wine, or Windows). */
for (const location of ['CurrentUser', 'LocalMachine'] as const) {
  runStoreContract(`windows ${location}`, async () => {
    const storeName = uniqueStoreName();
    return {
      store: createWindowsStore({ linkOnRenewal: true }),
      cert: (name) => observed(location, storeName, name),
      cleanup: async () => deleteSystemStore(location, storeName),
    };
  });
}
