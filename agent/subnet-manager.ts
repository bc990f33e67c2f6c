// Builds the SubnetManager for the chosen mode. Imports are lazy: an etcd-mode agent never loads
// the Kubernetes client (and vice versa), which keeps start-up time and RSS down.
import type { SubnetManager } from '../lib/subnet/types.js';
import type { Logger } from '../lib/log.js';
import type { Clock } from '../lib/retry.js';
import type { KubeNodeClient } from '../lib/subnet/kube-client.js';
import type { AgentOptions } from './options.js';

export interface SubnetManagerHandle {
  sm: SubnetManager;
  /** The VTEP MAC we published before (kube mode reads our own annotation back). */
  previousVtepMac(): Promise<string | undefined>;
  nodeName: string;
  /** Kube mode: the API client (NetworkPolicy watches share it). */
  kube?: KubeNodeClient;
}

export async function createSubnetManager(o: AgentOptions, logger: Logger, clock: Clock, hostname: string, signal: AbortSignal): Promise<SubnetManagerHandle> {
  if (o.kubeSubnetMgr) {
    const { KubeSubnetManager, resolveNodeName } = await import('../lib/subnet/kube.js');
    const nodeName = await resolveNodeName(o, signal);
    const sm = new KubeSubnetManager({
      kubeApiUrl: o.kubeApiUrl, kubeconfigFile: o.kubeconfigFile, nodeName,
      annotationPrefix: o.kubeAnnotationPrefix, netConfigPath: o.netConfigPath, logger, clock,
    });
    return { sm, nodeName, kube: sm.client, previousVtepMac: () => sm.previousVtepMac() };
  }
  const { EtcdSubnetManager } = await import('../lib/subnet/etcd.js');
  const sm = new EtcdSubnetManager({
    endpoints: o.etcdEndpoints, prefix: o.etcdPrefix,
    caFile: o.etcdCafile, certFile: o.etcdCertfile, keyFile: o.etcdKeyfile,
    username: o.etcdUsername, password: o.etcdPassword, logger, clock,
  });
  return { sm, nodeName: hostname, previousVtepMac: async () => undefined };
}
