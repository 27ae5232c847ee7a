import path from 'node:path';
import { readStackConfig } from '../../../stack/src/config';

/** The helm binary the chart tests run: `HELM`, else the one the stack builds into its tools dir. */
export function helmBinary(env: NodeJS.ProcessEnv = process.env): string {
  return env.HELM ?? path.join(readStackConfig(undefined, env).toolsDir, 'helm-v4.3.2', 'helm');
}
