// The cluster's PKI, made with openssl the way kubeadm lays it out: one CA for everything (serving
// and client certificates), the service-account key pair, and one client certificate per
// identity. Identities carry their RBAC meaning in the subject: CN is the user, O the groups
// (system:masters for the admin, system:nodes for kubelets, system:node-proxier's user for
// kube-proxy). EC P-256 keys: a whole cluster's PKI is made in well under a second.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../harness/exec.js';

export interface Pki {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly saKey: string;
  readonly saPub: string;
  /** A client certificate for `cn` in groups `orgs`; returns { cert, key } paths. */
  client(name: string, cn: string, orgs?: readonly string[]): Promise<CertPair>;
  /** A serving certificate with these DNS names and IPs. */
  serving(name: string, cn: string, dns: readonly string[], ips: readonly string[]): Promise<CertPair>;
}

export interface CertPair { cert: string; key: string }

const openssl = (args: readonly string[]): Promise<unknown> => run('openssl', args);

async function ecKey(path: string): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
}

export async function makePki(dir: string): Promise<Pki> {
  const caCert = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  await ecKey(caKey);
  await openssl(['req', '-x509', '-new', '-key', caKey, '-subj', '/CN=twill-test-ca', '-days', '30', '-out', caCert,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature']);
  const saKey = join(dir, 'sa.key');
  const saPub = join(dir, 'sa.pub');
  await openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', saKey]);
  await openssl(['pkey', '-in', saKey, '-pubout', '-out', saPub]);

  async function sign(name: string, subject: string, ext: string): Promise<CertPair> {
    const key = join(dir, `${name}.key`);
    const csr = join(dir, `${name}.csr`);
    const cert = join(dir, `${name}.crt`);
    const extFile = join(dir, `${name}.ext`);
    writeFileSync(extFile, ext);
    await ecKey(key);
    await openssl(['req', '-new', '-key', key, '-subj', subject, '-out', csr]);
    await openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-CAcreateserial', '-days', '30',
      '-extfile', extFile, '-out', cert]);
    return { cert, key };
  }

  return {
    dir, caCert, caKey, saKey, saPub,
    client(name, cn, orgs = []) {
      const subject = [...orgs.map((o) => `/O=${o}`), `/CN=${cn}`].join('');
      return sign(name, subject, 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
    },
    serving(name, cn, dns, ips) {
      const san = [...dns.map((d) => `DNS:${d}`), ...ips.map((i) => `IP:${i}`)].join(',');
      return sign(name, `/CN=${cn}`,
        `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`);
    },
  };
}

/** A kubeconfig for `server` authenticating with a client certificate. */
export function writeKubeconfig(path: string, server: string, caCert: string, user: string, pair: CertPair): void {
  writeFileSync(path, [
    'apiVersion: v1', 'kind: Config',
    'clusters:', '- name: twill', '  cluster:', `    server: ${server}`, `    certificate-authority: ${caCert}`,
    'users:', `- name: ${user}`, '  user:', `    client-certificate: ${pair.cert}`, `    client-key: ${pair.key}`,
    'contexts:', '- name: twill', '  context:', '    cluster: twill', `    user: ${user}`,
    'current-context: twill', '',
  ].join('\n'));
}
