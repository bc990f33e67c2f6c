// ensure/check/remove may be called from the resync timer and from a network change at once;
// interleaving two read-modify-write sequences against the kernel would race, so run them
// one at a time.

export function serializer(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (fn) => {
    const next = tail.then(fn, fn);
    tail = next.catch(() => undefined);
    return next;
  };
}
