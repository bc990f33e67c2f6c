// etcd mode: see test/harness/suites/repair.ts for what this proves.
import { repairSuite } from '../harness/suites/repair.js';

repairSuite('etcd');
