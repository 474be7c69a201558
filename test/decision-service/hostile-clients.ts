// Child process of hardening-lib.ts's hostileLoad(): the hostile clients, away from the
// measuring client's event loop. Prints "started", then one JSON line of counts.
//   tsx test/decision-service/hostile-clients.ts <http port> <frame port> <seconds> <outcomes per batch> [pause ms]
import { hostileClients } from './hardening-lib.ts';

// tap runs every file of a directory it is given: without arguments this is not the child.
if (process.argv.length < 6) process.exit(0);
const [http = '0', frames = '0', seconds = '3', batch = '5000', pauseMs = '0'] = process.argv.slice(2);
process.stdout.write('started\n');
const counts = await hostileClients(Number(http), Number(frames), Number(seconds), Number(batch), Number(pauseMs));
process.stdout.write(`${JSON.stringify(counts)}\n`);
process.exit(0);
