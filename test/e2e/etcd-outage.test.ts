// etcd stopped for 60 s: datapath unaffected, agents alive and not ready, full recovery after.
import { outageSuite } from '../harness/suites/outage.js';

outageSuite('etcd');
