// The plugin's one command table: a lazy loader per command, so a call loads only the command it
// runs. HOT_COMMANDS, ADD and DEL (the calls a node makes by the thousand), is all the compiled
// executable's small bundle serves, with VERSION (runtime/bun.ts); COMMANDS adds the rest.
// `@__PURE__` lets the bundler drop COMMANDS, and with it CHECK, GC and STATUS, from a bundle
// that does not use it.
export const HOT_COMMANDS = {
  ADD: async () => (await import('./add.js')).cmdAdd,
  DEL: async () => (await import('./del.js')).cmdDel,
};

const OTHERS = {
  CHECK: async () => (await import('./check.js')).cmdCheck,
  GC: async () => (await import('./gc.js')).cmdGc,
  STATUS: async () => (await import('./status.js')).cmdStatus,
};

/** The commands an entry serves (runCni() reports a missing one as an internal error). */
export type CommandTable = Partial<typeof HOT_COMMANDS & typeof OTHERS>;

export const COMMANDS: CommandTable = /* @__PURE__ */ Object.assign({}, HOT_COMMANDS, OTHERS);
