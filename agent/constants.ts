// Defaults shared by the agent, its CLI and the manifests.
export const DEFAULT_HEALTHZ_PORT = 8471;
export const DEFAULT_HEALTHZ_IP = '0.0.0.0';
export const DEFAULT_SUBNET_FILE = '/run/twill/subnet.env';
export const DEFAULT_ETCD_PREFIX = '/twill.io/network';
export const DEFAULT_ETCD_ENDPOINTS = 'http://127.0.0.1:2379';
export const DEFAULT_NET_CONFIG_PATH = '/etc/twill/net-conf.json';
export const DEFAULT_KUBE_ANNOTATION_PREFIX = 'twill.io';
export const VERSION = '0.1.0';
