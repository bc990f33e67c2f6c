// Public surface of the netlink layer. Types and the in-memory kernel are free to import; the
// real handle loads koffi only when a socket is first opened (ffi.ts), so importing this index
// costs no FFI start-up. The CNI plugin may import './handle.js' / './netns.js' directly to keep
// its module graph minimal.
export * from './types.js';
export { openHandle, type HandleOptions } from './handle.js';
export { MemoryKernel } from './memory.js';
export { openNetnsFd, closeFd, withNetnsSync, writeSysctl, readSysctl } from './netns.js';
export { formatIp, formatMac, parseIp, parseMac, parsePrefix } from './ipaddr.js';
