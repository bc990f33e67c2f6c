// etcd mode: peers joining, leaving (agent stopped + lease deleted), expiring (etcd TTL),
// invalid leases ignored, stale entries removed at start, nodes coming back with their subnets.
import { membershipSuite } from '../harness/suites/membership.js';

membershipSuite('etcd');
