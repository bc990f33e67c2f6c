// Pure IP math for twill (no I/O, no dependencies): see addr.ts for why bigint.
export * from './addr.js';
export * from './prefix.js';
export * from './cidr.js';
export * from './host.js';
export * from './mac.js';
export * from './pick.js';
