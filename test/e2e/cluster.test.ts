// etcd mode, 3 nodes: distinct leases, subnet.env, the VXLAN device, exact per-peer kernel
// entries, every ordered pod pair connects with no NAT, MTU with DF, --ip-masq to the outside.
import { basicSuite } from '../harness/suites/basic.js';

basicSuite('etcd');
