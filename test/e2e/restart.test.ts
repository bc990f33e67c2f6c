// etcd mode: see test/harness/suites/restart.ts for what this proves.
import { restartSuite } from '../harness/suites/restart.js';

restartSuite('etcd');
