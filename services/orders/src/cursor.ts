import { invalidCursor } from './errors';

// Page cursors are opaque to clients: the last id of the page, base64url-encoded.

export function encodeCursor(lastId: string): string {
  return Buffer.from(lastId, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined, pattern: RegExp): string | undefined {
  if (cursor === undefined) return undefined;
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!pattern.test(id)) throw invalidCursor();
  return id;
}
