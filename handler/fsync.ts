import { fsync } from 'node:fs';

/**
 * fsync(2) through libuv's thread pool: the one file call kvvm's writers leave asynchronous. It waits for the disk
 * (milliseconds, far more on a busy one); every other call of a write (open, write into the page cache, rename,
 * close) takes microseconds synchronously and costs a thread-pool round trip through fs/promises
 * (stores/safeWrite.ts, protocol/atomicFile.ts).
 */
export function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
}
