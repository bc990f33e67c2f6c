// Lease formats (flannel-compatible etcd key and JSON value) and the pure lease-set diff.
export * from './key.js';
export * from './codec.js';
export * from './diff.js';
