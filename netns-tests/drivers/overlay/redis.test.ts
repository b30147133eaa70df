// The same cluster with redis:// as the store: traffic, host loss, store
// outage and agent restarts, as on etcd.
import { storeSuite } from './failure-suite.js';

storeSuite('redis');
