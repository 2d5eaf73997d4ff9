/**
 * Request and reply over a forked helper's IPC channel, matched by id (vaultHost.ts, processTimer.ts): `ask` sends
 * `{ id, ...body }` and resolves with the message that carries the same id. When the channel closes (the helper
 * exited or disconnected; the messages it sent are read before that), what is still waiting fails, naming `what`.
 * Messages without an id (a helper's ready notice) are left to the caller's listener.
 */
import type { ChildProcess } from 'node:child_process';

export function ipcRequester<Body extends object, Reply extends { id: number }>(child: ChildProcess, what: string): (body: Body) => Promise<Reply> {
  let nextId = 1;
  const pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  child.on('message', (m: unknown) => {
    if (typeof m !== 'object' || m === null || !('id' in m)) return;
    const reply = m as Reply;
    pending.get(reply.id)?.resolve(reply);
    pending.delete(reply.id);
  });
  child.once('disconnect', () => {
    for (const p of pending.values()) p.reject(new Error(`${what} closed its channel without an answer`));
    pending.clear();
  });
  return (body) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ id, ...body });
    });
}
