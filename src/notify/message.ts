import { escapeHtml } from '../lib/html.js';
import type { EmailMessage } from './email.js';

/** A notification for people, written once and rendered for each channel. */
export interface Notice {
  title: string;
  /** Plain sentences, most important first. */
  lines: string[];
  /** Label → value pairs (alert, VM, status, file, SHA-256 …). */
  facts: Array<[string, string]>;
  /** The machine-readable form, sent as is to plain webhooks. */
  data: unknown;
}

export const WEBHOOK_FORMATS = ['json', 'slack', 'teams'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

/** The body to POST: the plain JSON, a Slack incoming-webhook message, or a Teams (Workflows) adaptive card. */
export function webhookBody(format: WebhookFormat, notice: Notice): unknown {
  if (format === 'json') return notice.data;
  if (format === 'slack') {
    const facts = notice.facts.map(([k, v]) => `*${k}:* ${v}`).join('\n');
    return {
      text: notice.title,
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: notice.title.slice(0, 150) } },
        ...(notice.lines.length ? [{ type: 'section', text: { type: 'mrkdwn', text: notice.lines.join('\n') } }] : []),
        { type: 'section', text: { type: 'mrkdwn', text: facts.slice(0, 3000) } },
      ],
    };
  }
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body: [
            { type: 'TextBlock', size: 'Large', weight: 'Bolder', wrap: true, text: notice.title },
            ...notice.lines.map((text) => ({ type: 'TextBlock', wrap: true, text })),
            { type: 'FactSet', facts: notice.facts.map(([title, value]) => ({ title, value })) },
          ],
        },
      },
    ],
  };
}

export function emailOf(notice: Notice): EmailMessage {
  const text = [notice.title, '', ...notice.lines, '', ...notice.facts.map(([k, v]) => `${k}: ${v}`)].join('\n');
  const html = [
    `<h2>${escapeHtml(notice.title)}</h2>`,
    ...notice.lines.map((l) => `<p>${escapeHtml(l)}</p>`),
    '<table>',
    ...notice.facts.map(([k, v]) => `<tr><th align="left">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`),
    '</table>',
  ].join('\n');
  return { subject: notice.title, text, html };
}
