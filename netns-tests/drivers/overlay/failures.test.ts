// The overlay's failure tests with etcd as the cluster store.
import { storeSuite } from './failure-suite.js';

storeSuite('etcd');
