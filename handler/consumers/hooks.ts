/**
 * The poll loop's afterCycle: hands the certificates whose active version changed to what uses them. Bindings
 * first (Windows), so a command that restarts a site already finds them on the new certificate; then the
 * onChange commands. Neither can undo or fail the install.
 */
import type { CertificateSyncResult } from '../engine/certificateSync.js';
import { updateBindings, type BindingDeps } from './bindings.js';
import { runChangeCommands, type ChangeCommandDeps } from './changeCommands.js';
import { createFollowUpMemory, type FollowUpFile } from './followUps.js';

export interface ConsumerHookDeps extends ChangeCommandDeps {
  /** Windows only: moves http.sys bindings. */
  moveBindings?: BindingDeps['move'];
  /** Where what consumers did is kept across workers (the service's state folder); in memory only without. */
  followUpFile?: FollowUpFile['path'];
}

export function createConsumerHooks(deps: ConsumerHookDeps): (results: CertificateSyncResult[]) => Promise<void> {
  const memory = createFollowUpMemory(deps.followUpFile === undefined ? undefined : { path: deps.followUpFile, log: deps.log });
  return async (results) => {
    await memory.begin(results);
    if (deps.moveBindings) updateBindings(results, { move: deps.moveBindings, log: deps.log }, memory);
    await runChangeCommands(results, deps, memory);
    await memory.finish(results);
  };
}
