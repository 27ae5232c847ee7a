import { dlqCliBrokerUrl } from './config';
import { runDlqCommand } from './dlq-command';

// Entry point of `npm run dlq -- list|replay|drop <consumer-group>`; see dlq-command.ts.
process.exitCode = await runDlqCommand(process.argv.slice(2), () => dlqCliBrokerUrl(), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
});
