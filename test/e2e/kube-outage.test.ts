// kube mode (fake API server, the test plays kube-controller-manager): the same assertions as
// the etcd mode; see test/harness/suites/outage.ts.
import { outageSuite } from '../harness/suites/outage.js';

outageSuite('kube');
