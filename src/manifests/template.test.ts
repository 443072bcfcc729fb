import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderTemplate, templateVariables } from './template.js';

describe('mesh templates', () => {
  const vars: Record<string, string> = { REDIS_HOST: 'redis', 'cas.cas.cas_url': 'cas:8081' };
  const lookup = (name: string) => vars[name];

  it('fills variables and defaults, and leaves CAS placeholders alone', () => {
    const r = renderTemplate(
      '{{REDIS_HOST}}:{{ REDIS_PORT | default(value="6379") }} {{LOG|default("error")}} {{N | default(3)}} {{cas.cas.cas_url}} $$SCONE::flask.crt$$',
      lookup,
    );
    assert.deepEqual(r, { text: 'redis:6379 error 3 cas:8081 $$SCONE::flask.crt$$', missing: [], invalid: [] });
  });

  it('prefers a value over the default, and lists what has neither', () => {
    assert.equal(renderTemplate('{{REDIS_HOST | default(value="x")}}', lookup).text, 'redis');
    const r = renderTemplate('{{API_USER}} and {{ OTHER }}', lookup);
    assert.deepEqual(r.missing, ['API_USER', 'OTHER']);
  });

  it('reports expressions it does not understand instead of guessing', () => {
    assert.deepEqual(renderTemplate('{{ A | upper }} {{ }}', lookup).invalid, ['{{ A | upper }}', '{{ }}']);
  });

  it('lists variables with their defaults', () => {
    assert.deepEqual(templateVariables('{{A}} {{B|default(value="1")}}'), [
      { name: 'A', hasDefault: false },
      { name: 'B', hasDefault: true, defaultValue: '1' },
    ]);
  });
});
