// Readiness of notification sockets without burning CPU while idle.
//
// Why: Node cannot watch an arbitrary fd in its event loop without a native addon, and polling a
// non-blocking socket on a timer costs a process wake-up per tick — measured here at ≈0.8 % CPU
// for a 25 ms timer and ≈0.6 % at 50 ms on a loaded 2-core box, above the agent's 0.5 % idle
// budget. Instead ONE poll(2) runs on a koffi worker thread (libuv threadpool) over every
// watched socket plus an eventfd; the main thread reads the sockets when poll reports them
// readable. Idle cost: no wake-ups at all (a 10 s safety timeout). Pinned threads: at most one
// for the whole process, however many watches exist (a thread per blocked recv would take one
// of the pool's four threads per watch and starve fs/dns). Registering or cancelling a socket
// writes the eventfd, so poll returns at once and abort is immediate.
import { getLibc, type Libc } from './ffi.js';

const POLLIN = 0x1;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
const SAFETY_TIMEOUT_MS = 10_000;

class Poller {
  private readonly waiters = new Map<number, () => void>();
  private readonly c: Libc;
  private readonly efd: number;
  private inflight = false;
  private readonly one = Buffer.alloc(8);
  private readonly sink = Buffer.alloc(8);

  constructor() {
    this.c = getLibc();
    this.efd = this.c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (this.efd < 0) throw new Error(`eventfd: errno ${this.c.errno()}`);
    this.one.writeBigUInt64LE(1n);
  }

  /** Resolves when `fd` is readable (or has an error/hang-up), or when cancel(fd) is called. */
  wait(fd: number): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.get(fd)?.();
      this.waiters.set(fd, resolve);
      this.kick();
    });
  }

  cancel(fd: number): void {
    const w = this.waiters.get(fd);
    if (!w) return;
    this.waiters.delete(fd);
    w();
    this.kick();
  }

  /** Re-polls with the current set: interrupt the running poll, or start one. */
  private kick(): void {
    if (this.inflight) this.c.write(this.efd, this.one, 8);
    else if (this.waiters.size > 0) this.start();
  }

  private start(): void {
    const fds = [this.efd, ...this.waiters.keys()];
    const buf = Buffer.alloc(fds.length * 8); // owned by the worker until the callback
    fds.forEach((fd, i) => { buf.writeInt32LE(fd, i * 8); buf.writeInt16LE(POLLIN, i * 8 + 4); });
    this.inflight = true;
    this.c.pollAsync!(buf, fds.length, SAFETY_TIMEOUT_MS, (res) => {
      this.inflight = false;
      if (res > 0) this.dispatch(buf, fds);
      if (this.waiters.size > 0) this.start();
    });
  }

  private dispatch(buf: Buffer, fds: number[]): void {
    for (let i = 0; i < fds.length; i++) {
      if (buf.readInt16LE(i * 8 + 6) === 0) continue;
      const fd = fds[i]!;
      if (fd === this.efd) { this.c.read(this.efd, this.sink, 8); continue; }
      const w = this.waiters.get(fd);
      if (w) { this.waiters.delete(fd); w(); }
    }
  }
}

let poller: Poller | undefined;

/** The process-wide poller (created on first use); undefined when the FFI has no async calls. */
export function getPoller(): Poller | undefined {
  if (!poller && getLibc().pollAsync) poller = new Poller();
  return poller;
}

export type { Poller };
