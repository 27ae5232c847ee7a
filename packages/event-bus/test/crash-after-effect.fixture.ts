import pg from 'pg';
import { createEventBus, handleOnce } from '../src/index';
import { TEST_TYPE, testLogger, validateTestEvent } from './broker-fixture';

// A consumer process that dies (SIGKILL, no chance to acknowledge) right after its effect committed.
// Arguments: <rabbitmq url> <postgres url> <group> <exchange>
const [rabbitmqUrl = '', postgresUrl = '', group = '', exchange = ''] = process.argv.slice(2);
const pool = new pg.Pool({ connectionString: postgresUrl });
const bus = createEventBus({
  url: rabbitmqUrl,
  logger: testLogger,
  validate: validateTestEvent,
  exchange,
});
await bus.consume({
  group,
  handlers: {
    [TEST_TYPE]: async (event) => {
      await handleOnce(pool, group, event.id, async (tx) => {
        await tx.query('INSERT INTO crash_effects (event_id) VALUES ($1)', [event.id]);
      });
      process.kill(process.pid, 'SIGKILL');
    },
  },
});
