// Reads a Kubernetes list answer ({"kind":"NodeList","metadata":{…},"items":[{…},{…}]}) as it
// streams in, handing over one item at a time, so the agent never holds the whole body nor all of
// its parsed objects at once: at 5k Nodes the body is megabytes and the parsed Nodes (managed
// fields, status) several times that, which set the agent's peak memory in kube mode. Paging the
// list instead (limit/continue) would cost a request per page; client-go lists in one.
//
// A JSON scanner that tracks only nesting, strings and escapes: the elements of the top-level
// "items" array are cut out and JSON.parse'd one by one; everything else (kind, metadata with
// the resourceVersion) is kept as a skeleton with "items":[] and parsed at the end. Any chunking
// of the text gives the same result.

const QUOTE = 0x22, BACKSLASH = 0x5c, COLON = 0x3a, COMMA = 0x2c;
const LBRACE = 0x7b, RBRACE = 0x7d, LBRACKET = 0x5b, RBRACKET = 0x5d;

export class ListScanner {
  private readonly onItem: (item: unknown) => void;
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** The text of the last string closed at depth 1 (a key, or a short top-level value). */
  private topString = '';
  private key = '';
  private inItems = false;
  private skeleton: string[] = [];
  /** Pieces of an item cut across chunks (undefined: not inside an item). */
  private item: string[] | undefined;
  items = 0;

  constructor(onItem: (item: unknown) => void) {
    this.onItem = onItem;
  }

  push(chunk: string): void {
    let skelFrom = 0;
    let itemFrom = this.item ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === BACKSLASH) this.escaped = true;
        else if (c === QUOTE) this.inString = false;
        if (this.depth === 1 && this.inString) this.topString += chunk[i];
        continue;
      }
      switch (c) {
        case QUOTE:
          this.inString = true;
          if (this.depth === 1) this.topString = '';
          break;
        case COLON:
          if (this.depth === 1) this.key = this.topString;
          break;
        case LBRACE: case LBRACKET:
          if (this.inItems && this.depth === 2 && c === LBRACE) {
            if (itemFrom < 0) this.skeleton.push(chunk.slice(skelFrom, i));
            this.item = [];
            itemFrom = i;
          }
          this.depth++;
          if (c === LBRACKET && this.depth === 2 && this.key === 'items') this.inItems = true;
          break;
        case RBRACE: case RBRACKET:
          this.depth--;
          if (this.inItems && this.depth === 2 && c === RBRACE && this.item) {
            this.item.push(chunk.slice(itemFrom, i + 1));
            const text = this.item.join('');
            this.item = undefined;
            itemFrom = -1;
            skelFrom = i + 1;
            this.items++;
            this.onItem(JSON.parse(text));
          } else if (this.inItems && this.depth === 1 && c === RBRACKET) {
            this.inItems = false;
          }
          if (this.depth === 0) this.key = '';
          break;
        case COMMA:
          // Commas between items are left out of the skeleton, which keeps "items":[].
          if (this.inItems && this.depth === 2 && !this.item) {
            this.skeleton.push(chunk.slice(skelFrom, i));
            skelFrom = i + 1;
          }
          break;
      }
    }
    if (this.item) this.item.push(chunk.slice(itemFrom));
    else this.skeleton.push(chunk.slice(skelFrom));
  }

  /** The list without its items (kind, metadata …); throws when the text was not one complete JSON value. */
  end(): Record<string, unknown> {
    if (this.item || this.inString || this.depth !== 0) throw new SyntaxError('list answer ended early (truncated JSON)');
    const v = JSON.parse(this.skeleton.join('')) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SyntaxError('list answer is not a JSON object');
    return v as Record<string, unknown>;
  }
}
