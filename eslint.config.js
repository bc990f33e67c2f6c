import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// One netlink choke point (DESIGN style 4): only lib/netlink/socket.ts may open sockets or
// load the FFI that does; everything else goes through a NetlinkHandle.
const socketBan = {
  'no-restricted-imports': ['error', {
    paths: [
      { name: 'koffi', message: 'Only lib/netlink/socket.ts (and lib/netlink/ffi.ts) may use koffi.' },
      { name: 'netlink', message: 'Use lib/netlink (our codec over one transport).' },
      { name: 'node-netlink', message: 'Measured unfit (see DESIGN.md).' },
      { name: 'node:dgram', message: 'No socket code outside lib/netlink/socket.ts.' },
    ],
  }],
};

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
  { files: ['lib/netlink/socket.ts', 'lib/netlink/ffi.ts'], rules: { 'no-restricted-imports': 'off' } },
);
