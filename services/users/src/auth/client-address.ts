/**
 * The address of the client that made a request. Each trusted proxy (the gateway) appends the
 * address it received the request from to `X-Forwarded-For`, so the list is read from the right:
 * the first address not belonging to a trusted proxy is the client. A client can prepend anything
 * it likes, which is why the list is never read from the left.
 */
export function clientAddressOf(
  socketAddress: string | undefined,
  forwardedFor: string | string[] | undefined,
  trustedProxies: ReadonlySet<string>,
): string {
  const peer = normaliseAddress(socketAddress ?? 'unknown');
  if (!trustedProxies.has(peer) || forwardedFor === undefined) return peer;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
    .split(',')
    .map((hop) => normaliseAddress(hop.trim()))
    .filter((hop) => hop !== '');
  for (let index = hops.length - 1; index >= 0; index -= 1) {
    const hop = hops[index];
    if (hop !== undefined && !trustedProxies.has(hop)) return hop;
  }
  return hops[0] ?? peer;
}

/** IPv4-mapped IPv6 (`::ffff:10.0.0.1`) is the IPv4 address. */
function normaliseAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
