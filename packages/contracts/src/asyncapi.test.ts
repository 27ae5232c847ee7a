import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { eventsDir } from './contract-files.fixture';
import { eventTypeNames } from './generated/event-types';

interface AsyncApiDocument {
  asyncapi: string;
  channels: Record<string, { address: string; messages: Record<string, { $ref: string }> }>;
  operations: Record<string, { action: 'send' | 'receive'; channel: { $ref: string } }>;
  components: { messages: Record<string, { name: string; payload: { $ref: string } }> };
}

const document = parse(readFileSync(`${eventsDir}asyncapi.yaml`, 'utf8')) as AsyncApiDocument;

// Spectral lints the document itself (npm run contracts:lint); this checks it agrees with the schemas.
describe('asyncapi.yaml', () => {
  it('is AsyncAPI 3.0', () => {
    expect(document.asyncapi).toBe('3.0.0');
  });

  it('has one channel per event type, addressed by the type (the routing key)', () => {
    const addresses = Object.values(document.channels).map((channel) => channel.address);
    expect(addresses.sort()).toEqual([...eventTypeNames]);
  });

  it("names each message after its channel's event type and takes its payload from the schema", () => {
    for (const channel of Object.values(document.channels)) {
      const refs = Object.values(channel.messages).map((message) => message.$ref);
      expect(refs).toHaveLength(1);
      const key = refs[0]?.replace('#/components/messages/', '') ?? '';
      expect(document.components.messages[key]).toMatchObject({
        name: channel.address,
        payload: { $ref: `./${channel.address}.schema.json` },
      });
    }
  });

  it('has exactly one producer for every event and at least one consumer', () => {
    for (const [key, channel] of Object.entries(document.channels)) {
      const actions = Object.values(document.operations)
        .filter((operation) => operation.channel.$ref === `#/channels/${key}`)
        .map((operation) => operation.action);
      expect(
        actions.filter((action) => action === 'send'),
        channel.address,
      ).toHaveLength(1);
      expect(
        actions.filter((action) => action === 'receive').length,
        channel.address,
      ).toBeGreaterThan(0);
    }
  });
});
