// Entry of the two forwarders of the cluster's public entry (see forward.ts).
import { forwardMain } from './forward';

forwardMain(process.argv.slice(2));
