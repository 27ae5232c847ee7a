import { describe, expect, it } from 'vitest';
import { alertParamsOf } from './alert';
import { loadTemplates } from './templates';

const templates = loadTemplates();

describe('templates', () => {
  it('escapes values in HTML and keeps them as typed in text and subject', () => {
    const message = templates.renderEmail('order-confirmed', {
      orderId: 'ord_<script>alert(1)</script>',
      total: '$1.00 & more',
      recipient: { name: 'Eve "<img src=x onerror=alert(1)>"' },
    });
    expect(message.html).not.toContain('<script>');
    expect(message.html).not.toContain('<img');
    expect(message.html).toContain('ord_&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(message.html).toContain('$1.00 &amp; more');
    expect(message.text).toBe(
      'Hi Eve "<img src=x onerror=alert(1)>",\n\n' +
        'your order ord_<script>alert(1)</script> is confirmed and your payment of $1.00 & more was accepted.\n\n' +
        'Thank you for shopping with Bazaar.\n',
    );
    expect(message.subject).toBe('Your order ord_<script>alert(1)</script> is confirmed');
  });

  it('keeps a subject on one line whatever the values hold', () => {
    const message = templates.renderEmail('announcement', {
      title: 'Sale\r\nBcc: victim@example.com',
      text: 'x',
      recipient: { name: 'A' },
    });
    expect(message.subject).toBe('Sale Bcc: victim@example.com');
  });

  it('renders inbox entries without the greeting', () => {
    expect(
      templates.renderInbox('order-cancelled', {
        orderId: 'ord_1',
        total: '$2.00',
        reason: 'you cancelled it',
      }),
    ).toEqual({
      title: 'Your order ord_1 was cancelled',
      body: 'Order ord_1 ($2.00) was cancelled because you cancelled it.',
    });
  });

  it('renders an alert email with every firing alert and only http links', () => {
    const params = alertParamsOf({
      version: '4',
      groupKey: 'g',
      status: 'firing',
      receiver: 'notifications',
      groupLabels: { alertname: 'DiskFull', instance: 'db-1' },
      commonLabels: { alertname: 'DiskFull' },
      commonAnnotations: {},
      externalURL: 'http://127.0.0.1:9093',
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'DiskFull', instance: 'db-1' },
          annotations: { summary: 'disk 95 % full' },
          startsAt: '2025-01-31T10:00:00Z',
          endsAt: '0001-01-01T00:00:00Z',
          generatorURL: 'javascript:alert(1)',
        },
      ],
    });
    const message = templates.renderEmail('alert', { ...params, recipient: { name: 'operators' } });
    expect(message.subject).toBe('[FIRING:1] DiskFull instance=db-1');
    expect(message.text).toContain('FIRING DiskFull');
    expect(message.text).toContain('  disk 95 % full');
    expect(message.text).toContain('  instance = db-1');
    expect(message.html).not.toContain('javascript:');
  });
});
