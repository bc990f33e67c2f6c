// kube mode (fake API server, the test plays kube-controller-manager): the same assertions as
// the etcd mode; see test/harness/suites/membership.ts.
import { membershipSuite } from '../harness/suites/membership.js';

membershipSuite('kube');
