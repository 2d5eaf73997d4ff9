/**
 * Windows, `updateBindings`: after a certificate's active version changed, the http.sys SSL bindings on the
 * thumbprint it replaced are moved to the new one (handler/stores/windows/httpSslBindings.ts does the moving).
 */
import type { CertificateSyncResult, SyncLogger } from '../engine/certificateSync.js';
import type { FollowUpMemory } from './followUps.js';

interface BindingMove {
  moved: string[];
  failed: Array<{ address: string; error: string }>;
}

export interface BindingDeps {
  /** Moves every binding on `from` to `to` (the real one opens httpapi.dll). */
  move: (from: string, to: string) => BindingMove;
  log: SyncLogger;
}

export function updateBindings(results: readonly CertificateSyncResult[], deps: BindingDeps, memory: FollowUpMemory): void {
  for (const r of results) {
    const from = r.activated?.previousThumbprint;
    const to = r.thumbprint;
    if (r.cert.target.platform !== 'windows' || !r.cert.target.updateBindings || from === undefined || to === undefined || from === to) continue;
    const label = `${r.cert.vaultName}/${r.cert.secretName}`;
    let outcome: BindingMove;
    try {
      outcome = deps.move(from, to);
    } catch (err) {
      const text = `http.sys bindings were not updated: ${err instanceof Error ? err.message : String(err)}`;
      deps.log.warn(`${label}: ${text}`);
      memory.record(r, { ok: false, text });
      continue;
    }
    for (const address of outcome.moved) deps.log.info(`${label}: moved http.sys binding ${address} from ${from} to ${to}`);
    for (const f of outcome.failed) deps.log.warn(`${label}: http.sys binding ${f.address} was not moved: ${f.error}`);
    const moved =
      outcome.moved.length > 0 ? `Moved http.sys bindings ${outcome.moved.join(', ')} to thumbprint ${to}.` : `No http.sys binding used the previous thumbprint ${from}.`;
    const failed = outcome.failed.map((f) => `Binding ${f.address} was not moved: ${f.error}`).join(' ');
    memory.record(r, { ok: outcome.failed.length === 0, text: failed ? `${moved} ${failed}` : moved });
  }
}
