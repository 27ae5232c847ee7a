import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import type { TemplateName } from './notification';

// `src/templates.ts` and the bundle `dist/main.mjs` are both one level below the service folder.
export const TEMPLATES_DIR = fileURLToPath(new URL('../templates', import.meta.url));

/** A rendered email. */
export interface RenderedMessage {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

export interface Templates {
  /** The email for `template` with `params` (and `recipient` for the greeting). */
  renderEmail(template: TemplateName, params: Readonly<Record<string, unknown>>): RenderedMessage;
  /** The inbox entry's title (the subject) and body. */
  renderInbox(
    template: TemplateName,
    params: Readonly<Record<string, unknown>>,
  ): { readonly title: string; readonly body: string };
}

type Compiled = Handlebars.TemplateDelegate;

/**
 * Loads and compiles every template of `dir` once, at start (a missing or broken template fails the
 * start, not the first email). HTML parts are escaped by Handlebars (`{{value}}`); subject, text and
 * inbox parts are plain text, compiled with `noEscape` so "&" stays "&".
 */
export function loadTemplates(dir: string = TEMPLATES_DIR): Templates {
  const handlebars = Handlebars.create();
  handlebars.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  // Only http(s) links reach an href: a `javascript:` URL in a label must not become clickable.
  handlebars.registerHelper('httpUrl', (value: unknown) =>
    typeof value === 'string' && /^https?:\/\//i.test(value) ? value : '',
  );
  for (const file of readdirSync(path.join(dir, 'partials'))) {
    if (!file.endsWith('.hbs')) continue;
    handlebars.registerPartial(
      file.slice(0, -'.hbs'.length),
      readFileSync(path.join(dir, 'partials', file), 'utf8'),
    );
  }
  const compiled = new Map<string, Compiled>();
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.hbs')) continue;
    const name = file.slice(0, -'.hbs'.length);
    const isHtml = name.endsWith('.html');
    const source = readFileSync(path.join(dir, file), 'utf8');
    const template = handlebars.compile(source, { noEscape: !isHtml, strict: false });
    // Compile eagerly: a syntax error surfaces here.
    handlebars.precompile(source);
    compiled.set(name, template);
  }

  function part(template: TemplateName, kind: 'subject' | 'text' | 'html' | 'inbox'): Compiled {
    const found = compiled.get(`${template}.${kind}`);
    if (found === undefined) throw new Error(`template ${template}.${kind}.hbs is missing`);
    return found;
  }

  // A subject is one header line: line breaks from a value must not start a new header.
  const oneLine = (text: string) => text.replace(/[\r\n]+/g, ' ').trim();

  return {
    renderEmail(template, params) {
      const subject = oneLine(part(template, 'subject')(params));
      return {
        subject,
        text: part(template, 'text')(params).trim() + '\n',
        html: part(template, 'html')({ ...params, subject }),
      };
    },
    renderInbox(template, params) {
      return {
        title: oneLine(part(template, 'subject')({ ...params, recipient: { name: '' } })),
        body: part(template, 'inbox')(params).trim(),
      };
    },
  };
}

/** The templates every message kind needs, for a start-up check. */
export function assertTemplatesComplete(templates: Templates, names: readonly TemplateName[]) {
  for (const name of names) {
    templates.renderEmail(name, { recipient: { name: 'check' } });
    if (name !== 'alert') templates.renderInbox(name, {});
  }
}
