import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// One netlink choke point (docs/design.md, rule 4): only lib/netlink/socket.ts may open sockets or
// load the FFI that does; everything else goes through a NetlinkHandle.
const socketPaths = [
  { name: 'koffi', message: 'Only lib/netlink/socket.ts (and lib/netlink/ffi.ts) may use koffi.' },
  { name: 'netlink', message: 'Use lib/netlink (our codec over one transport).' },
  { name: 'node-netlink', message: 'Measured unfit (docs/design.md).' },
  { name: 'node:dgram', message: 'No socket code outside lib/netlink/socket.ts.' },
];

// The layers (docs/design.md, "Layers and ownership"): lib/ is shared by both programs and imports neither; the agent and
// the CNI plugin never import each other; the reconciler diffs and applies entries whatever
// backend built them, so it never imports a backend.
const layer = (banned, message) => ({ group: banned, message });
const LIB = layer(['**/agent/**', '**/cni/**'], 'lib/ is shared by the agent and the CNI plugin: it imports neither.');
const NOT_CNI = layer(['**/cni/**'], 'The agent never imports the CNI plugin: share code through lib/.');
const NOT_AGENT = layer(['**/agent/**'], 'The CNI plugin never imports the agent: share code through lib/.');
const NOT_BACKEND = layer(['**/backend/**'], 'The reconciler is backend-agnostic: a backend hands it entries.');
const restrict = (...patterns) => ({ 'no-restricted-imports': ['error', { paths: socketPaths, patterns }] });
const socketBan = restrict();

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tmp/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', queueMicrotask: 'readonly', setImmediate: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', structuredClone: 'readonly', performance: 'readonly', fetch: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      ...socketBan,
    },
  },
  { files: ['lib/**/*.ts'], rules: restrict(LIB) },
  { files: ['agent/**/*.ts'], rules: restrict(NOT_CNI) },
  { files: ['agent/reconcile/**/*.ts'], rules: restrict(NOT_CNI, NOT_BACKEND) },
  { files: ['cni/**/*.ts', 'cni/**/*.mjs'], rules: restrict(NOT_AGENT) },
  { files: ['lib/netlink/socket.ts', 'lib/netlink/ffi.ts'], rules: { 'no-restricted-imports': ['error', { patterns: [LIB] }] } },
);
