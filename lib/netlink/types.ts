// The NetlinkHandle contract: a handle bound to ONE network namespace through which all kernel
// programming flows (docs/design.md, "Layers and ownership"). Two implementations satisfy it:
//   handle.ts  real rtnetlink over the socket transport in socket.ts
//   memory.ts  an in-memory kernel for unit tests (same semantics for ownership, replace, errors)
//
// Addresses are strings in canonical form ("10.244.1.0", "fd00::1"), prefixes "10.244.1.0/24",
// MACs lowercase "aa:bb:cc:dd:ee:ff". Families: 4 | 6. Everything is plain data so that the
// reconciler can diff desired vs observed with structural keys.

import type { Family } from '../ip/addr.js';
export type { Family };

/** rtnetlink protocol number twill tags its routes and nexthops with (ownership marker). */
export const RTPROT_TWILL = 116;
/** The kernel's main routing table (RT_TABLE_MAIN): where twill's routes live. */
export const MAIN_TABLE = 254;

export const NUD_PERMANENT = 0x80;
export const NUD_NOARP = 0x40;
export const NUD_REACHABLE = 0x02;
export const NTF_SELF = 0x02;
export const NTF_MASTER = 0x04;

export interface VxlanAttrs {
  vni: number;
  port: number;             // UDP destination port (8472)
  local?: string;           // underlay source address (v4 or v6)
  learning: boolean;
  gbp?: boolean;
  link?: number;            // underlay device ifindex (IFLA_VXLAN_LINK)
  udpCsum?: boolean;        // outer UDP checksum (IFLA_VXLAN_UDP_CSUM); kernel default on
}

export interface VethAttrs {
  peerName: string;
  peerNetnsFd?: number;     // create the peer directly in this netns (IFLA_NET_NS_FD)
  peerMtu?: number;
  peerMac?: string;
}

export type LinkType = 'vxlan' | 'bridge' | 'veth' | 'loopback' | 'other';

/** A link as the kernel reports it. */
export interface Link {
  index: number;
  name: string;
  type: LinkType;
  kind?: string;            // raw IFLA_INFO_KIND when present
  mtu: number;
  mac?: string;
  up: boolean;              // IFF_UP set
  master?: number;          // ifindex of the bridge it is enslaved to
  vxlan?: VxlanAttrs;
  hairpin?: boolean;        // bridge port hairpin mode, when a bridge port
}

/** What to create (op 'create') or change (op 'set'; only given fields change). */
export interface LinkSpec {
  name: string;
  index?: number;           // for 'set'/'delete' (else looked up by name)
  type?: Exclude<LinkType, 'loopback' | 'other'>;  // required for 'create'
  mtu?: number;
  mac?: string;
  up?: boolean;
  master?: number;          // 0 = no master
  vxlan?: VxlanAttrs;
  veth?: VethAttrs;
  netnsFd?: number;         // move the link into this netns
  newName?: string;         // rename (op 'set')
  hairpin?: boolean;        // bridge port hairpin (op 'set', link must be a bridge port)
}

export interface Addr {
  ifindex: number;
  family: Family;
  address: string;
  prefixLen: number;
  scope?: number;           // RT_SCOPE_* (0 universe, 253 link, 254 host)
}

export interface Route {
  family: Family;
  dst: string;              // prefix "10.244.1.0/24" ("0.0.0.0/0" for default)
  gateway?: string;
  ifindex?: number;         // RTA_OIF
  nhid?: number;            // RTA_NH_ID: route through a nexthop object (listed routes with
                            // nhid carry no gateway/ifindex/onlink: those belong to the Nexthop)
  onlink?: boolean;         // RTNH_F_ONLINK
  protocol: number;         // RTPROT_*; RTPROT_TWILL for ours
  table?: number;           // default main (254)
  scope?: number;           // default universe (0), link (253) for device routes
  src?: string;             // preferred source
  metric?: number;          // RTA_PRIORITY
  mtu?: number;             // RTAX_MTU
}

export interface Nexthop {
  id: number;
  family: Family;
  gateway: string;
  ifindex: number;
  onlink: boolean;
  protocol: number;
}

/** An ARP/NDP entry (family 4/6) or a bridge FDB entry (family 'bridge'). */
export interface Neigh {
  family: Family | 'bridge';
  ifindex: number;
  ip?: string;              // ARP/NDP: the neighbour's L3 address; FDB: NDA_DST (remote VTEP)
  mac: string;              // NDA_LLADDR ('' when the kernel reports none: INCOMPLETE/FAILED
                            // entries, and ARP/NDP deletion events)
  state: number;            // NUD_*
  flags: number;            // NTF_*
  vni?: number;             // FDB: NDA_VNI
}

/** One kernel object, discriminated by `kind`. */
export type NlObject =
  | ({ kind: 'link' } & LinkSpec)
  | ({ kind: 'addr' } & Addr)
  | ({ kind: 'route' } & Route)
  | ({ kind: 'nexthop' } & Nexthop)
  | ({ kind: 'neigh' } & Neigh);

/**
 * create:  NLM_F_CREATE|NLM_F_EXCL (EEXIST is an error)
 * replace: NLM_F_CREATE|NLM_F_REPLACE (routes, nexthops, neighbours, addresses)
 * set:     change an existing link (RTM_NEWLINK without CREATE / RTM_SETLINK)
 * delete:  remove; ENOENT/ESRCH/ENODEV/EADDRNOTAVAIL count as success ("already gone")
 */
export type NlVerb = 'create' | 'replace' | 'set' | 'delete';

export interface NlChange {
  verb: NlVerb;
  object: NlObject;
}

export type NlResult =
  | { ok: true }
  | { ok: false; errno: number; code: string; message: string };

export type NlEventGroup = 'link' | 'addr' | 'route' | 'nexthop' | 'neigh';

export type NlEvent =
  | { type: 'new' | 'del'; object: NlObject }
  /** The notification socket overflowed (ENOBUFS): events were lost; do a full resync. */
  | { type: 'overflow' };

export interface RouteFilter {
  family?: Family;
  table?: number;           // default main (254); 0 = every table
  protocol?: number;
  ifindex?: number;         // RTA_OIF; a nhid route matches its nexthop's device
}

export interface NeighFilter {
  family: Family | 'bridge';
  ifindex?: number;
}

export interface NetlinkHandle {
  /** A description of the bound netns for error messages ("host", "/var/run/netns/x"). */
  readonly netns: string;
  listLinks(): Promise<Link[]>;
  /**
   * One link by name without a dump (RTM_GETLINK with IFLA_IFNAME); undefined when absent.
   * Optional for backward compatibility; a dump of all links is interrupted (NLM_F_DUMP_INTR)
   * when links change concurrently, e.g. 20 CNI ADDs creating veths at once.
   */
  getLink?(name: string): Promise<Link | undefined>;
  listAddrs(family?: Family): Promise<Addr[]>;
  listRoutes(filter?: RouteFilter): Promise<Route[]>;
  listNexthops(): Promise<Nexthop[]>;           // [] where the kernel has no nexthop objects
  listNeighs(filter: NeighFilter): Promise<Neigh[]>;
  /**
   * Applies changes in order, batched (many messages per sendmsg, bounded in-flight window).
   * One result per change, same order; a failed entry never aborts the rest.
   */
  apply(changes: readonly NlChange[]): Promise<NlResult[]>;
  /** Kernel notifications for the given groups until `signal` aborts. */
  watch(groups: readonly NlEventGroup[], signal: AbortSignal): AsyncIterable<NlEvent>;
  /** Whether this kernel supports nexthop objects (probed once). */
  supportsNexthops(): Promise<boolean>;
  close(): void;
}
